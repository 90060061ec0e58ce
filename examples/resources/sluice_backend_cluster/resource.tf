resource "sluice_backend_cluster" "example" {
  gateway_id        = sluice_gateway.example.id
  name              = "kafka"
  bootstrap_servers = ["127.0.0.1:9092"]
  authentication = {
    sasl_plain = {
      username = "sluice"
      password = "change-me" # use a sensitive variable in real configurations
    }
  }
}
