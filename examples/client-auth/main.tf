# One virtual cluster per client-authentication method, each on its own
# port-mapped listener (first port bootstrap, then broker 111: tansu's):
#
#   plain      127.0.0.1:19192  SASL/PLAIN checked by the gateway (terminate);
#                               upstream uses the backend cluster's credentials
#   scram      127.0.0.1:19292  SASL/SCRAM-SHA-512 relayed to the broker, which
#                               checks it (passthrough: the broker must take
#                               SCRAM, e.g. tansu --authentication; the other
#                               clusters then need the gateway's own broker
#                               credentials in backend_cluster.authentication)
#   plain-open 127.0.0.1:19392  PLAIN for those who have it, anonymous for the
#                               rest: rules are tried in order, first match wins
#   oauth      127.0.0.1:19592  OAUTHBEARER JWTs checked by the gateway against
#                               the identity provider's JWKS (terminate; only
#                               when var.oauth is set)
#   mtls       127.0.0.1:19492  the TLS client certificate names the client
#                               (only when var.client_ca_file is set)
#
# Client settings for each are in the README ("Client authentication").

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
  description = "Each virtual cluster's listener ports: bootstrap, then broker 111."
  type        = map(list(number))
  default = {
    plain      = [19192, 19193]
    scram      = [19292, 19293]
    plain-open = [19392, 19393]
    mtls       = [19492, 19493]
    oauth      = [19592, 19593]
  }
}

variable "oauth" {
  description = "The identity provider whose JWTs the oauth cluster accepts; null leaves it out."
  type = object({
    jwks_endpoint = string       # e.g. https://idp.example/.well-known/jwks.json
    issuer        = string       # the iss every token carries
    audiences     = list(string) # an aud a token must carry
  })
  default = null
}

variable "principals" {
  description = "PLAIN users the gateway checks: username => password. Data planes only ever get argon2id hashes of them."
  type        = map(string)
  sensitive   = true
  default     = { alice = "alice-secret-1" } # use a real secret source
}

variable "client_ca_file" {
  description = "PEM CA whose certificates identify mTLS clients; null leaves the mtls cluster out."
  type        = string
  default     = null
}

variable "server_certificate_file" {
  description = "PEM certificate chain of the mtls listener."
  type        = string
  default     = "tls/server.pem"
}

variable "server_key_file" {
  description = "PEM private key of the mtls listener's certificate."
  type        = string
  default     = "tls/server.key"
}

locals {
  plain_terminate = {
    sasl_plain = {
      mediation  = "terminate"
      principals = [for user, password in var.principals : { username = user, password = password }]
    }
  }
}

resource "sluice_gateway" "edge" {
  name        = "client-auth"
  description = "One virtual cluster per client-authentication method (examples/client-auth)"
}

resource "sluice_backend_cluster" "kafka" {
  gateway_id        = sluice_gateway.edge.id
  name              = "kafka"
  bootstrap_servers = [var.backend_bootstrap]
}

module "plain" {
  source             = "../modules/tenant"
  gateway_id         = sluice_gateway.edge.id
  backend_cluster_id = sluice_backend_cluster.kafka.id
  name               = "plain"
  ports              = var.ports["plain"]
  min_broker_id      = 111
  authentication     = [local.plain_terminate]
}

module "scram" {
  source             = "../modules/tenant"
  gateway_id         = sluice_gateway.edge.id
  backend_cluster_id = sluice_backend_cluster.kafka.id
  name               = "scram"
  ports              = var.ports["scram"]
  min_broker_id      = 111
  # The broker checks the credentials: its users are the principals.
  authentication = [{ sasl_scram = { algorithm = "sha512" } }]
}

module "plain_open" {
  source             = "../modules/tenant"
  gateway_id         = sluice_gateway.edge.id
  backend_cluster_id = sluice_backend_cluster.kafka.id
  name               = "plain-open"
  ports              = var.ports["plain-open"]
  min_broker_id      = 111
  # Without the anonymous rule, a client that does not authenticate is
  # disconnected (and counted at hop=auth).
  authentication = [local.plain_terminate, { anonymous = {} }]
}

module "oauth" {
  count              = var.oauth == null ? 0 : 1
  source             = "../modules/tenant"
  gateway_id         = sluice_gateway.edge.id
  backend_cluster_id = sluice_backend_cluster.kafka.id
  name               = "oauth"
  ports              = var.ports["oauth"]
  min_broker_id      = 111
  authentication = [{
    oauth_bearer = {
      mediation = "terminate"
      jwks      = { endpoint = var.oauth.jwks_endpoint, timeout = 10, cache_expiration = 3600 }
      validate  = { issuer = var.oauth.issuer, audiences = var.oauth.audiences }
    }
  }]
}

# Mutual TLS: the listener verifies client certificates against the CA,
# and the virtual cluster admits a client by its certificate (principal
# User:<subject CN>).
resource "sluice_tls_trust_bundle" "clients" {
  count      = var.client_ca_file == null ? 0 : 1
  gateway_id = sluice_gateway.edge.id
  name       = "client-ca"
  trusted_ca = file(var.client_ca_file)
}

resource "sluice_virtual_cluster" "mtls" {
  count          = var.client_ca_file == null ? 0 : 1
  gateway_id     = sluice_gateway.edge.id
  name           = "mtls"
  destination_id = sluice_backend_cluster.kafka.id
  dns_label      = "mtls"
  authentication = [{ client_certificate = {} }]
}

resource "sluice_listener" "mtls" {
  count      = var.client_ca_file == null ? 0 : 1
  gateway_id = sluice_gateway.edge.id
  name       = "mtls"
  addresses  = ["127.0.0.1"]
  ports      = [for p in var.ports["mtls"] : tostring(p)]
}

resource "sluice_listener_policy_tls_server" "mtls" {
  count       = var.client_ca_file == null ? 0 : 1
  gateway_id  = sluice_gateway.edge.id
  name        = "mtls"
  listener_id = sluice_listener.mtls[0].id
  certificates = [{
    certificate = file(var.server_certificate_file)
    key         = file(var.server_key_file)
  }]
  client_authentication = {
    mode             = "required"
    trust_bundle_ids = [sluice_tls_trust_bundle.clients[0].id]
  }
}

resource "sluice_listener_policy_forward_to_virtual_cluster" "mtls" {
  count       = var.client_ca_file == null ? 0 : 1
  gateway_id  = sluice_gateway.edge.id
  name        = "mtls"
  listener_id = sluice_listener.mtls[0].id
  port_mapping = {
    destination_id  = sluice_virtual_cluster.mtls[0].id
    advertised_host = "127.0.0.1"
    bootstrap_port  = "at_start"
    min_broker_id   = 111
  }
}

output "bootstrap" {
  description = "Each virtual cluster's bootstrap address."
  value = merge(
    {
      plain      = module.plain.bootstrap
      scram      = module.scram.bootstrap
      plain-open = module.plain_open.bootstrap
    },
    var.client_ca_file == null ? {} : { mtls = "127.0.0.1:${var.ports["mtls"][0]}" },
    var.oauth == null ? {} : { oauth = module.oauth[0].bootstrap }
  )
}
