resource "sluice_consume_policy_decrypt" "example" {
  gateway_id         = sluice_gateway.example.id
  name               = "decrypt-values"
  virtual_cluster_id = sluice_virtual_cluster.example.id
  key_sources        = [{ static_key_id = sluice_static_key.example.id }]
}
