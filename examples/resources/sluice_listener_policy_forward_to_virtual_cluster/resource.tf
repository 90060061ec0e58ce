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

# Routing by TLS SNI instead needs TLS on the listener: the server refuses
# an `sni` policy on a listener without a sluice_listener_policy_tls_server,
# and that TLS policy cannot be destroyed while an `sni` policy uses its
# listener. Nothing in the SNI policy refers to the TLS policy, so say so
# with depends_on: Terraform then creates it after the TLS policy and
# destroys it before.
#
# resource "sluice_listener_policy_forward_to_virtual_cluster" "by_sni" {
#   gateway_id  = sluice_gateway.example.id
#   name        = "by-sni"
#   listener_id = sluice_listener.tls.id
#   sni = {
#     sni_suffix = ".kafka.example.com"
#   }
#   depends_on = [sluice_listener_policy_tls_server.tls]
# }
