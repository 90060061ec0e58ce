resource "sluice_cluster_policy_quota" "example" {
  gateway_id               = sluice_gateway.example.id
  name                     = "per-tenant-rates"
  virtual_cluster_id       = sluice_virtual_cluster.example.id
  per                      = "principal"
  produce_bytes_per_second = 1048576
  fetch_bytes_per_second   = 4194304
  max_connections          = 50
}
