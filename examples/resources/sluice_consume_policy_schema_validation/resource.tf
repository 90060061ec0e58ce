resource "sluice_consume_policy_schema_validation" "example" {
  gateway_id         = sluice_gateway.example.id
  name               = "orders-consume-schema"
  virtual_cluster_id = sluice_virtual_cluster.example.id
  schema             = jsonencode({ type = "object" })
  failure_mode       = "skip"
}
