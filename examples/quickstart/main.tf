# The quickstart gateway: one backend (a local tansu broker), one virtual
# cluster, one port-mapped listener. scripts/quickstart applies it.

terraform {
  required_providers {
    sluice = { source = "sluice/sluice" }
  }
}

# endpoint and token come from SLUICE_ENDPOINT and SLUICE_TOKEN.
provider "sluice" {}

variable "backend_bootstrap" {
  description = "host:port of the Kafka broker behind the gateway."
  type        = string
  default     = "127.0.0.1:29092"
}

variable "ports" {
  description = "Listener ports: bootstrap, then the broker (tansu's broker id is 111)."
  type        = list(number)
  default     = [19092, 19093]
}

resource "sluice_gateway" "quickstart" {
  name        = "quickstart"
  description = "Created by scripts/quickstart"
}

resource "sluice_backend_cluster" "local" {
  gateway_id        = sluice_gateway.quickstart.id
  name              = "local-tansu"
  bootstrap_servers = [var.backend_bootstrap]
}

module "demo" {
  source             = "../modules/tenant"
  gateway_id         = sluice_gateway.quickstart.id
  backend_cluster_id = sluice_backend_cluster.local.id
  name               = "demo"
  ports              = var.ports
  min_broker_id      = 111
}

output "gateway_id" {
  value = sluice_gateway.quickstart.id
}

output "bootstrap" {
  value = module.demo.bootstrap
}
