data "sluice_virtual_cluster" "team_a" {
  gateway_id = data.sluice_gateway.prod.id
  name       = "team-a"
}
