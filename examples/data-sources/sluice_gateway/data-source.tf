data "sluice_gateway" "prod" {
  name = "prod"
}
