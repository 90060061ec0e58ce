# One virtual cluster whose ACLs the gateway decides (acl_mode =
# "enforce_on_gateway"): nothing is allowed unless a rule allows it, a
# matching deny wins over any allow (as in Kafka), and each policy's
# `condition` (CEL over principal, client_id, virtual_cluster, listener
# and api) says whom its rules are for.
#
# - alice writes and reads orders*, reads audit, runs alice-* groups and
#   may describe the cluster (so DescribeAcls shows her rules).
# - bob reads orders in bob-* groups; a `shadow` policy tries out taking
#   that away: it is reported (acl_denied events with shadow = true,
#   counted at hop=policy in node status) and changes nothing until its
#   enforcement becomes "enforce".
# - anonymous clients may write orders and read audit.
# - a second virtual cluster leaves ACLs to the backend and tries rules
#   out: they are evaluated and reported, never applied.
#
# acceptance/tests/gateway_acls.rs applies this file and proves it with
# confluent-kafka, kafka-python and a raw Kafka client.

terraform {
  required_providers {
    sluice = { source = "sluice/sluice" }
  }
}

provider "sluice" {}

variable "backend_bootstrap" {
  description = "host:port of the Kafka broker behind the gateway."
  type        = string
  default     = "127.0.0.1:29092"
}

variable "ports" {
  description = "Listener ports: bootstrap, then broker 111."
  type        = list(number)
  default     = [19192, 19193]
}

variable "passthrough_ports" {
  description = "Listener ports of a second virtual cluster that leaves ACLs to the backend."
  type        = list(number)
  default     = [19292, 19293]
}

variable "principals" {
  description = "PLAIN users the gateway checks: username => password."
  type        = map(string)
  sensitive   = true
  default     = { alice = "alice-secret-1", bob = "bob-secret-1" } # use a real secret source
}

resource "sluice_gateway" "edge" {
  name = "gateway-acls"
}

resource "sluice_backend_cluster" "kafka" {
  gateway_id        = sluice_gateway.edge.id
  name              = "kafka"
  bootstrap_servers = [var.backend_bootstrap]
}

module "payments" {
  source             = "../modules/tenant"
  gateway_id         = sluice_gateway.edge.id
  backend_cluster_id = sluice_backend_cluster.kafka.id
  name               = "payments"
  ports              = var.ports
  min_broker_id      = 111
  authentication = [
    {
      sasl_plain = {
        mediation  = "terminate"
        principals = [for user, password in var.principals : { username = user, password = password }]
      }
    },
    { anonymous = {} },
  ]
  acl_mode = "enforce_on_gateway"
  acls = {
    alice = {
      condition = "principal == 'User:alice'"
      rules = [
        { resource_type = "topic", action = "allow", operations = ["read", "write", "create"], resource_names = ["orders*"] },
        { resource_type = "topic", action = "allow", operations = ["read"], resource_names = ["audit"] },
        { resource_type = "group", action = "allow", operations = ["read"], resource_names = ["alice-*"] },
        { resource_type = "cluster", action = "allow", operations = ["describe"], resource_names = ["kafka-cluster"] },
      ]
    }
    bob = {
      condition = "principal == 'User:bob'"
      rules = [
        { resource_type = "topic", action = "allow", operations = ["read"], resource_names = ["orders"] },
        { resource_type = "group", action = "allow", operations = ["read"], resource_names = ["bob-*"] },
      ]
    }
    bob-read-revoked = {
      condition   = "principal == 'User:bob'"
      enforcement = "shadow"
      rules = [
        { resource_type = "topic", action = "deny", operations = ["read"], resource_names = ["orders"] },
      ]
    }
    anonymous = {
      condition = "principal == 'User:ANONYMOUS'"
      rules = [
        { resource_type = "topic", action = "allow", operations = ["write"], resource_names = ["orders"] },
        { resource_type = "topic", action = "allow", operations = ["read"], resource_names = ["audit"] },
      ]
    }
  }
}

module "open" {
  source             = "../modules/tenant"
  gateway_id         = sluice_gateway.edge.id
  backend_cluster_id = sluice_backend_cluster.kafka.id
  name               = "open"
  ports              = var.passthrough_ports
  min_broker_id      = 111
  # The backend decides; these rules are being tried out: what they would
  # deny is reported (acl_denied, shadow = true), nothing is denied. Set
  # acl_mode = "enforce_on_gateway" once node status shows no surprises.
  acl_mode = "passthrough"
  acls = {
    next = {
      rules = [
        { resource_type = "topic", action = "allow", operations = ["read"], resource_names = ["*"] },
      ]
    }
  }
}

output "bootstrap" {
  description = "bootstrap.servers of the ACL-enforcing virtual cluster."
  value       = module.payments.bootstrap
}

output "passthrough_bootstrap" {
  description = "bootstrap.servers of the virtual cluster that leaves ACLs to the backend."
  value       = module.open.bootstrap
}
