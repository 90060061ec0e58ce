data "sluice_data_plane_nodes" "prod" {
  gateway_id = data.sluice_gateway.prod.id
}

output "connected_nodes" {
  value = [for n in data.sluice_data_plane_nodes.prod.nodes : n.hostname if n.connected]
}
