resource "sluice_listener_policy_tls_server" "example" {
  gateway_id  = sluice_gateway.example.id
  name        = "tls"
  listener_id = sluice_listener.example.id
  certificates = [{
    certificate = file("${path.module}/tls/server.pem")
    key         = file("${path.module}/tls/server.key")
  }]
  client_authentication = {
    mode             = "requested"
    trust_bundle_ids = [sluice_tls_trust_bundle.example.id]
  }
}
