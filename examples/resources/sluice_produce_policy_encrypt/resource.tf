resource "sluice_produce_policy_encrypt" "example" {
  gateway_id         = sluice_gateway.example.id
  name               = "encrypt-values"
  virtual_cluster_id = sluice_virtual_cluster.example.id
  static_key_id      = sluice_static_key.example.id
  part_of_record     = ["value"]
}
