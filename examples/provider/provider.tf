terraform {
  required_providers {
    sluice = { source = "sluice/sluice" }
  }
}

# endpoint, token and ca_certificate default to SLUICE_ENDPOINT,
# SLUICE_TOKEN and SLUICE_CA_CERTIFICATE.
provider "sluice" {
  endpoint = "http://127.0.0.1:7600"
}
