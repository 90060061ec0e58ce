resource "sluice_produce_policy_modify_headers" "example" {
  gateway_id         = sluice_gateway.example.id
  name               = "tag-team"
  virtual_cluster_id = sluice_virtual_cluster.example.id
  actions            = [{ set = { key = "x-team", value = "a" } }]
}
