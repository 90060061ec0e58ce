resource "sluice_consume_policy_modify_headers" "example" {
  gateway_id         = sluice_gateway.example.id
  name               = "strip-internal"
  virtual_cluster_id = sluice_virtual_cluster.example.id
  actions            = [{ remove = { key = "x-internal" } }]
}
