resource "sluice_event_hook" "example" {
  gateway_id = sluice_gateway.example.id
  name       = "audit-log"
  source     = "crud"
  handler    = "log"
}
