resource "sluice_listener_policy_forward_to_virtual_cluster" "example" {
  gateway_id  = sluice_gateway.example.id
  name        = "to-team-a"
  listener_id = sluice_listener.example.id
  port_mapping = {
    destination_id  = sluice_virtual_cluster.example.id
    advertised_host = "127.0.0.1"
    bootstrap_port  = "at_start"
    min_broker_id   = 0
  }
}
