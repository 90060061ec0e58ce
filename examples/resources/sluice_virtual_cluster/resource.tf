resource "sluice_virtual_cluster" "example" {
  gateway_id     = sluice_gateway.example.id
  name           = "team-a"
  destination_id = sluice_backend_cluster.example.id
  dns_label      = "team-a"
  acl_mode       = "enforce_on_gateway"
  authentication = [{
    sasl_plain = {
      mediation  = "terminate"
      principals = [{ username = "alice", password = "alice-secret" }]
    }
  }]
}
