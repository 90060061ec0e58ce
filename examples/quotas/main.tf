# Per-tenant quotas on one shared virtual cluster, held gateway-wide
# across every node. Tenants here are told apart by their Kafka client id
# (with client authentication, `per = "principal"` keys by who logged in).
#
# - tenant-a: `produce_bytes_per_second` per client id, enforced. Over
#   it, nodes answer as a Kafka broker does: `throttle_time_ms` in the
#   Produce answer, and the connection is not read until the throttle has
#   passed. Clients back off by themselves; nothing is dropped.
# - tenant-s: the same limit in `shadow`: what would be throttled is
#   counted (node status, `quota_throttled` below) and nothing is.
# - everyone else: no quota.
#
# Two listeners serve the same virtual cluster, so that two nodes can run
# on one host (`sluice-proxy run --listeners node-a` / `node-b`); the
# control plane splits each limit between the nodes by their recent use.
#
# acceptance/tests/quotas.rs applies this file and measures it with
# confluent-kafka producers.

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

variable "ports_a" {
  description = "Listener node-a's ports: bootstrap, then broker 111."
  type        = list(number)
  default     = [19492, 19493]
}

variable "ports_b" {
  description = "Listener node-b's ports: bootstrap, then broker 111."
  type        = list(number)
  default     = [19494, 19495]
}

variable "produce_limit" {
  description = "Produce bytes per second per tenant client id, gateway-wide."
  type        = number
  default     = 1000000
}

resource "sluice_gateway" "edge" {
  name = "quotas"
}

resource "sluice_backend_cluster" "kafka" {
  gateway_id        = sluice_gateway.edge.id
  name              = "kafka"
  bootstrap_servers = [var.backend_bootstrap]
}

resource "sluice_virtual_cluster" "shared" {
  gateway_id     = sluice_gateway.edge.id
  name           = "shared"
  dns_label      = "shared"
  destination_id = sluice_backend_cluster.kafka.id
}

resource "sluice_listener" "node" {
  for_each   = { node-a = var.ports_a, node-b = var.ports_b }
  gateway_id = sluice_gateway.edge.id
  name       = each.key
  addresses  = ["127.0.0.1"]
  ports      = [for p in each.value : tostring(p)]
}

resource "sluice_listener_policy_forward_to_virtual_cluster" "node" {
  for_each    = sluice_listener.node
  gateway_id  = sluice_gateway.edge.id
  name        = "${each.key}-to-shared"
  listener_id = each.value.id
  port_mapping = {
    destination_id  = sluice_virtual_cluster.shared.id
    advertised_host = "127.0.0.1"
    min_broker_id   = 111
  }
}

resource "sluice_cluster_policy_quota" "tenant_a" {
  gateway_id               = sluice_gateway.edge.id
  name                     = "tenant-a-produce"
  virtual_cluster_id       = sluice_virtual_cluster.shared.id
  condition                = "client_id == 'tenant-a'"
  per                      = "client_id"
  produce_bytes_per_second = var.produce_limit
}

resource "sluice_cluster_policy_quota" "tenant_s" {
  gateway_id               = sluice_gateway.edge.id
  name                     = "tenant-s-shadow"
  virtual_cluster_id       = sluice_virtual_cluster.shared.id
  condition                = "client_id == 'tenant-s'"
  per                      = "client_id"
  produce_bytes_per_second = var.produce_limit
  enforcement              = "shadow"
}

output "bootstrap" {
  description = "Bootstrap address of each listener."
  value       = { for k, p in { node-a = var.ports_a, node-b = var.ports_b } : k => "127.0.0.1:${p[0]}" }
}

output "quota_ids" {
  description = "The quota policies' ids."
  value = {
    tenant_a = sluice_cluster_policy_quota.tenant_a.id
    tenant_s = sluice_cluster_policy_quota.tenant_s.id
  }
}

# What the quotas did, per node, as the nodes report it.
data "sluice_data_plane_nodes" "nodes" {
  gateway_id = sluice_gateway.edge.id
}

output "quota_throttled" {
  description = "Requests each quota throttled (shadow: would have), on every node since it started."
  value = {
    for id in [sluice_cluster_policy_quota.tenant_a.id, sluice_cluster_policy_quota.tenant_s.id] :
    id => sum(concat([0], flatten([
      for n in data.sluice_data_plane_nodes.nodes.nodes : [
        for o in n.policy_outcomes : o.count if o.policy_id == id && o.outcome == "throttled"
      ]
    ])))
  }
}
