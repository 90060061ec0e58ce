resource "sluice_data_plane_certificate" "example" {
  gateway_id = sluice_gateway.example.id
  name       = "node-1"
  generated  = true
}
