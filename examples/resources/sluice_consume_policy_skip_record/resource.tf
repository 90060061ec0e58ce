resource "sluice_consume_policy_skip_record" "example" {
  gateway_id         = sluice_gateway.example.id
  name               = "skip-flagged"
  virtual_cluster_id = sluice_virtual_cluster.example.id
  skip_condition     = "headers['x-skip'] == 'true'"
}
