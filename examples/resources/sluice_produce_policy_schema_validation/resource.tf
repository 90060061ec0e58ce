resource "sluice_produce_policy_schema_validation" "example" {
  gateway_id         = sluice_gateway.example.id
  name               = "orders-schema"
  virtual_cluster_id = sluice_virtual_cluster.example.id
  type               = "json"
  schema             = jsonencode({ type = "object", required = ["id"] })
  failure_mode       = "reject"
}
