resource "sluice_cluster_policy_acls" "example" {
  gateway_id         = sluice_gateway.example.id
  name               = "orders-acl"
  virtual_cluster_id = sluice_virtual_cluster.example.id
  rules = [{
    resource_type  = "topic"
    action         = "allow"
    operations     = ["read", "write", "describe"]
    resource_names = ["orders-*"]
  }]
}
