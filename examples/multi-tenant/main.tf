# Two teams on one backend, each with its own virtual cluster and listener,
# from the reusable modules/tenant.

terraform {
  required_providers {
    sluice = { source = "sluice/sluice" }
  }
}

provider "sluice" {}

variable "backend_bootstrap" {
  type    = string
  default = "127.0.0.1:29092"
}

resource "sluice_gateway" "shared" {
  name = "shared"
}

resource "sluice_backend_cluster" "kafka" {
  gateway_id        = sluice_gateway.shared.id
  name              = "kafka"
  bootstrap_servers = [var.backend_bootstrap]
}

module "team_a" {
  source             = "../modules/tenant"
  gateway_id         = sluice_gateway.shared.id
  backend_cluster_id = sluice_backend_cluster.kafka.id
  name               = "team-a"
  ports              = [19192, 19193]
  min_broker_id      = 111
}

module "team_b" {
  source             = "../modules/tenant"
  gateway_id         = sluice_gateway.shared.id
  backend_cluster_id = sluice_backend_cluster.kafka.id
  name               = "team-b"
  ports              = [19292, 19293]
  min_broker_id      = 111
}

output "team_a_bootstrap" {
  value = module.team_a.bootstrap
}

output "team_b_bootstrap" {
  value = module.team_b.bootstrap
}
