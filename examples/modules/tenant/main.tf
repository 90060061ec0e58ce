# One team's view of a shared backend: a virtual cluster and the listener
# that serves it, port-mapped (first port bootstrap, then one per broker).

terraform {
  required_providers {
    sluice = { source = "sluice/sluice" }
  }
}

variable "gateway_id" {
  description = "The gateway the tenant lives in."
  type        = string
}

variable "backend_cluster_id" {
  description = "The backend cluster the tenant's virtual cluster fronts."
  type        = string
}

variable "name" {
  description = "Tenant name; also its virtual cluster's dns_label (RFC 1035)."
  type        = string
}

variable "ports" {
  description = "Listener ports: the first is bootstrap, then one per broker id."
  type        = list(number)
}

variable "advertised_host" {
  description = "The host clients are told to connect to."
  type        = string
  default     = "127.0.0.1"
}

variable "description" {
  description = "Description of the tenant's virtual cluster, listener and forward policy."
  type        = string
  default     = null
}

variable "authentication" {
  description = "Client authentication rules, first match wins (see sluice_virtual_cluster.authentication); null admits anonymous clients."
  type        = any
  default     = null
}

variable "namespace" {
  description = "The tenant's namespace on the shared backend (see sluice_virtual_cluster.namespace), e.g. { mode = \"hide_prefix\", prefix = \"team-a.\" }; null shares the backend's names as they are."
  type        = any
  default     = null
}

variable "topic_aliases" {
  description = "Client-visible aliases for the tenant's topics: [{ alias, topic }]."
  type        = any
  default     = null
}

variable "acl_mode" {
  description = "Where ACLs are decided: \"enforce_on_gateway\" (the rules in acls; nothing else is allowed) or \"passthrough\" (the backend decides); null is passthrough."
  type        = string
  default     = null
}

variable "acls" {
  description = "Gateway ACL policies by name (with acl_mode = \"enforce_on_gateway\"): { condition, enforcement, rules = [{ resource_type, action, operations, resource_names }] } (see sluice_cluster_policy_acls)."
  type = map(object({
    condition   = optional(string)
    enforcement = optional(string)
    rules = list(object({
      resource_type  = string
      action         = string
      operations     = list(string)
      resource_names = list(string)
    }))
  }))
  default = {}
}

variable "min_broker_id" {
  description = "The broker id the second port serves (tansu's single broker is 111)."
  type        = number
  default     = 0
}

resource "sluice_virtual_cluster" "this" {
  gateway_id     = var.gateway_id
  name           = var.name
  description    = var.description
  destination_id = var.backend_cluster_id
  dns_label      = var.name
  authentication = var.authentication
  namespace      = var.namespace
  topic_aliases  = var.topic_aliases
  acl_mode       = var.acl_mode
}

resource "sluice_cluster_policy_acls" "this" {
  for_each           = var.acls
  gateway_id         = var.gateway_id
  virtual_cluster_id = sluice_virtual_cluster.this.id
  name               = each.key
  condition          = each.value.condition
  enforcement        = each.value.enforcement
  rules              = each.value.rules
}

resource "sluice_listener" "this" {
  gateway_id  = var.gateway_id
  name        = var.name
  description = var.description
  addresses   = [var.advertised_host]
  ports       = [for p in var.ports : tostring(p)]
}

resource "sluice_listener_policy_forward_to_virtual_cluster" "this" {
  gateway_id  = var.gateway_id
  name        = var.name
  description = var.description
  listener_id = sluice_listener.this.id
  port_mapping = {
    destination_id  = sluice_virtual_cluster.this.id
    advertised_host = var.advertised_host
    bootstrap_port  = "at_start"
    min_broker_id   = var.min_broker_id
  }
}

output "virtual_cluster_id" {
  description = "The tenant's virtual cluster."
  value       = sluice_virtual_cluster.this.id
}

output "listener_id" {
  description = "The tenant's listener."
  value       = sluice_listener.this.id
}

output "bootstrap" {
  description = "What the tenant's Kafka clients use as bootstrap.servers."
  value       = "${var.advertised_host}:${var.ports[0]}"
}
