resource "sluice_event_hook" "example" {
  gateway_id = sluice_gateway.example.id
  name       = "audit-log"
  source     = "crud"
  handler    = "webhook"
  config = {
    url = "https://hooks.example.com/sluice"
    # Header values are write-only secrets, like passwords: only their
    # fingerprints are read back. Use a sensitive variable in real configurations.
    headers = {
      Authorization = "Bearer change-me"
    }
  }
}
