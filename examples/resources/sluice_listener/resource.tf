resource "sluice_listener" "example" {
  gateway_id = sluice_gateway.example.id
  name       = "edge"
  addresses  = ["127.0.0.1"]
  ports      = ["19092-19095"]
}
