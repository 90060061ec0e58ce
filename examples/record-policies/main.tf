# Record policies on one virtual cluster: the gateway changes, checks,
# hides and encrypts records on their way to and from the broker. Each
# policy's `condition` (CEL over the record: topic, partition, key, value
# as JSON, value_text, headers, offset, timestamp, and principal,
# client_id, virtual_cluster, listener, api) says which records it is for;
# policies of a phase run oldest first.
#
# - stamped*: produce sets `via = sluice`; consume removes `trace-internal`
#   (still stored in the broker, never shown to consumers).
# - events: consume leaves out records whose JSON `level` is "debug";
#   consumers still move past them and commit normally.
# - payments: produce refuses records that are not JSON objects with a
#   non-negative `amount` (INVALID_RECORD, naming the record and the path).
# - secrets: values encrypted with `var.encryption_key` (AES-256-GCM,
#   ciphertext at rest), decrypted with either key on consume: switching
#   the variable from "old" to "new" rotates without losing old records.
# - cards: only `$.card.number` inside the JSON value is encrypted.
#
# acceptance/tests/record_policies.rs applies this file and proves it with
# confluent-kafka and kafka-python.

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
  default     = [19392, 19393]
}

variable "keys" {
  description = "Static keys (32 bytes, hex or base64) by name."
  type        = map(string)
  sensitive   = true
  # use a real secret source
  default = {
    old = "6f6c642d6b65792d6f6c642d6b65792d6f6c642d6b65792d6f6c642d6b657921"
    new = "6e65772d6b65792d6e65772d6b65792d6e65772d6b65792d6e65772d6b657921"
  }
}

variable "encryption_key" {
  description = "The key new records are encrypted with (a name in var.keys)."
  type        = string
  default     = "old"
}

resource "sluice_gateway" "edge" {
  name = "record-policies"
}

resource "sluice_backend_cluster" "kafka" {
  gateway_id        = sluice_gateway.edge.id
  name              = "kafka"
  bootstrap_servers = [var.backend_bootstrap]
}

module "records" {
  source             = "../modules/tenant"
  gateway_id         = sluice_gateway.edge.id
  backend_cluster_id = sluice_backend_cluster.kafka.id
  name               = "records"
  ports              = var.ports
  min_broker_id      = 111
}

resource "sluice_produce_policy_modify_headers" "stamp" {
  gateway_id         = sluice_gateway.edge.id
  name               = "stamp"
  virtual_cluster_id = module.records.virtual_cluster_id
  condition          = "topic.startsWith('stamped')"
  actions            = [{ set = { key = "via", value = "sluice" } }]
}

resource "sluice_consume_policy_modify_headers" "hide_trace" {
  gateway_id         = sluice_gateway.edge.id
  name               = "hide-trace"
  virtual_cluster_id = module.records.virtual_cluster_id
  condition          = "topic.startsWith('stamped')"
  actions            = [{ remove = { key = "trace-internal" } }]
}

resource "sluice_consume_policy_skip_record" "no_debug" {
  gateway_id         = sluice_gateway.edge.id
  name               = "no-debug"
  virtual_cluster_id = module.records.virtual_cluster_id
  condition          = "topic == 'events'"
  skip_condition     = "has(value.level) && value.level == 'debug'"
}

resource "sluice_produce_policy_schema_validation" "payments" {
  gateway_id         = sluice_gateway.edge.id
  name               = "payments"
  virtual_cluster_id = module.records.virtual_cluster_id
  condition          = "topic == 'payments'"
  type               = "json"
  failure_mode       = "reject"
  schema = jsonencode({
    type       = "object"
    required   = ["amount"]
    properties = { amount = { type = "number", minimum = 0 } }
  })
}

resource "sluice_static_key" "keys" {
  for_each   = nonsensitive(toset(keys(var.keys)))
  gateway_id = sluice_gateway.edge.id
  name       = each.key
  value      = var.keys[each.key]
}

resource "sluice_produce_policy_encrypt" "secrets" {
  gateway_id         = sluice_gateway.edge.id
  name               = "encrypt-secrets"
  virtual_cluster_id = module.records.virtual_cluster_id
  condition          = "topic == 'secrets'"
  static_key_id      = sluice_static_key.keys[var.encryption_key].id
  part_of_record     = ["value"]
}

resource "sluice_consume_policy_decrypt" "secrets" {
  gateway_id         = sluice_gateway.edge.id
  name               = "decrypt-secrets"
  virtual_cluster_id = module.records.virtual_cluster_id
  condition          = "topic == 'secrets'"
  key_sources        = [for k in sluice_static_key.keys : { static_key_id = k.id }]
  part_of_record     = ["value"]
}

resource "sluice_produce_policy_encrypt" "cards" {
  gateway_id         = sluice_gateway.edge.id
  name               = "encrypt-cards"
  virtual_cluster_id = module.records.virtual_cluster_id
  condition          = "topic == 'cards'"
  static_key_id      = sluice_static_key.keys[var.encryption_key].id
  fields             = ["$.card.number"]
}

resource "sluice_consume_policy_decrypt" "cards" {
  gateway_id         = sluice_gateway.edge.id
  name               = "decrypt-cards"
  virtual_cluster_id = module.records.virtual_cluster_id
  condition          = "topic == 'cards'"
  key_sources        = [for k in sluice_static_key.keys : { static_key_id = k.id }]
  fields             = ["$.card.number"]
}

output "bootstrap" {
  value = module.records.bootstrap
}

# What the policies did, per policy and outcome, as the nodes report it.
data "sluice_data_plane_nodes" "nodes" {
  gateway_id = sluice_gateway.edge.id
}

output "records_rejected" {
  description = "Records refused or left out by a policy, on every node since it started."
  value = sum(concat([0], flatten([
    for n in data.sluice_data_plane_nodes.nodes.nodes : [
      for o in n.policy_outcomes : o.count if o.outcome == "rejected" && !o.shadow
    ]
  ])))
}
