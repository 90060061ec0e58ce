resource "sluice_tls_trust_bundle" "example" {
  gateway_id = sluice_gateway.example.id
  name       = "client-ca"
  trusted_ca = file("${path.module}/tls/ca.pem")
}
