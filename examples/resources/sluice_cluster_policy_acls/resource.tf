resource "sluice_cluster_policy_acls" "example" {
  gateway_id         = sluice_gateway.example.id
  name               = "orders-writers"
  virtual_cluster_id = sluice_virtual_cluster.example.id
  # Needs acl_mode = "enforce_on_gateway" on the virtual cluster.
  condition   = "principal == 'User:alice'"
  enforcement = "enforce" # or "shadow": report what it would deny, deny nothing
  rules = [{
    resource_type  = "topic"
    action         = "allow"
    operations     = ["read", "write"]
    resource_names = ["orders-*"]
  }]
}
