resource "sluice_gateway" "example" {
  name        = "example"
  description = "Loopback demo gateway"
}
