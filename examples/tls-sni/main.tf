# Two teams on ONE TLS port, told apart by the SNI host name their clients
# ask for. One wildcard certificate serves every name because brokers are
# named `broker-<id>-<dns_label><suffix>` (shared_suffix), one label under
# the suffix:
#
#   team-a: bootstrap-team-a.sluice.localhost:19443 → broker-111-team-a.sluice.localhost:19443
#   team-b: bootstrap-team-b.sluice.localhost:19443 → broker-111-team-b.sluice.localhost:19443
#
# `*.localhost` names resolve to loopback with Debian's libnss-myhostname
# (scripts/install-deps installs it). Make the certificate with any CA,
# e.g. openssl or mkcert, for the name `*.sluice.localhost`; clients trust
# the CA (confluent-kafka: security.protocol=SSL, ssl.ca.location=ca.pem).

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

variable "port" {
  description = "The one TLS port every team connects to."
  type        = number
  default     = 19443
}

variable "sni_suffix" {
  description = "Host-name suffix of every team's names."
  type        = string
  default     = ".sluice.localhost"
}

variable "certificate_file" {
  description = "PEM certificate chain for *.<suffix> (leaf first)."
  type        = string
  default     = "tls/wildcard.pem"
}

variable "key_file" {
  description = "PEM private key of the certificate."
  type        = string
  default     = "tls/wildcard.key"
}

variable "teams" {
  description = "One virtual cluster per team; each name is its dns_label."
  type        = set(string)
  default     = ["team-a", "team-b"]
}

resource "sluice_gateway" "edge" {
  name        = "tls-sni"
  description = "Teams on one SNI listener (examples/tls-sni)"
}

resource "sluice_backend_cluster" "kafka" {
  gateway_id        = sluice_gateway.edge.id
  name              = "kafka"
  bootstrap_servers = [var.backend_bootstrap]
}

resource "sluice_virtual_cluster" "team" {
  for_each       = var.teams
  gateway_id     = sluice_gateway.edge.id
  name           = each.key
  destination_id = sluice_backend_cluster.kafka.id
  dns_label      = each.key
}

resource "sluice_listener" "tls" {
  gateway_id = sluice_gateway.edge.id
  name       = "tls"
  addresses  = ["127.0.0.1", "::1"]
  ports      = [tostring(var.port)]
}

resource "sluice_listener_policy_tls_server" "tls" {
  gateway_id  = sluice_gateway.edge.id
  name        = "wildcard"
  listener_id = sluice_listener.tls.id
  certificates = [{
    certificate = file(var.certificate_file)
    key         = file(var.key_file)
  }]
  versions = { min = "tls12", max = "tls13" }
}

resource "sluice_listener_policy_forward_to_virtual_cluster" "by_sni" {
  gateway_id  = sluice_gateway.edge.id
  name        = "by-sni"
  listener_id = sluice_listener.tls.id
  sni = {
    sni_suffix         = var.sni_suffix
    broker_host_format = "shared_suffix"
    advertised_port    = var.port
  }
  # SNI routing needs the listener's TLS first (and outlives it on destroy):
  # nothing here refers to the TLS policy, so say so.
  depends_on = [sluice_listener_policy_tls_server.tls]
}

output "bootstrap" {
  description = "Each team's bootstrap address."
  value       = { for team in var.teams : team => "bootstrap-${team}${var.sni_suffix}:${var.port}" }
}
