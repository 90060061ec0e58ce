# Teams sharing one backend cluster, each isolated in its own namespace,
# from the reusable modules/tenant:
#
# - team-a and team-b (hide_prefix): each sees its own topics, groups and
#   transactional ids without the prefix ("orders" is team-a.orders on the
#   broker for one, team-b.orders for the other), never the other's, plus
#   the shared topic; team-a also reaches "orders" as "orders-v2".
# - audit (enforce_prefix): sees full names and may use only audit.*
#   (and the shared topic); anything else is TOPIC_AUTHORIZATION_FAILED.
#
# acceptance/tests/multi_tenant.rs applies this file and proves it with
# confluent-kafka and kafkajs clients.

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

variable "ports" {
  description = "Listener ports per tenant: bootstrap, then one per broker id."
  type        = map(list(number))
  default = {
    team-a = [19192, 19193]
    team-b = [19292, 19293]
    audit  = [19392, 19393]
  }
}

variable "shared_topics" {
  description = "Backend topics every tenant sees under their own names."
  type        = list(string)
  default     = ["shared-events"]
}

resource "sluice_gateway" "shared" {
  name = "shared"
}

resource "sluice_backend_cluster" "kafka" {
  gateway_id        = sluice_gateway.shared.id
  name              = "kafka"
  bootstrap_servers = [var.backend_bootstrap]
}

locals {
  shared = { topics = { exact_list = { names = var.shared_topics } } }
}

module "team_a" {
  source             = "../modules/tenant"
  gateway_id         = sluice_gateway.shared.id
  backend_cluster_id = sluice_backend_cluster.kafka.id
  name               = "team-a"
  ports              = var.ports["team-a"]
  min_broker_id      = 111
  namespace          = { mode = "hide_prefix", prefix = "team-a.", additional = local.shared }
  topic_aliases      = [{ alias = "orders-v2", topic = "orders" }]
}

module "team_b" {
  source             = "../modules/tenant"
  gateway_id         = sluice_gateway.shared.id
  backend_cluster_id = sluice_backend_cluster.kafka.id
  name               = "team-b"
  ports              = var.ports["team-b"]
  min_broker_id      = 111
  namespace          = { mode = "hide_prefix", prefix = "team-b.", additional = local.shared }
}

module "audit" {
  source             = "../modules/tenant"
  gateway_id         = sluice_gateway.shared.id
  backend_cluster_id = sluice_backend_cluster.kafka.id
  name               = "audit"
  ports              = var.ports["audit"]
  min_broker_id      = 111
  namespace          = { mode = "enforce_prefix", prefix = "audit.", additional = local.shared }
}

output "team_a_bootstrap" {
  value = module.team_a.bootstrap
}

output "team_b_bootstrap" {
  value = module.team_b.bootstrap
}

output "audit_bootstrap" {
  value = module.audit.bootstrap
}
