# A gateway is imported by its id.
terraform import sluice_gateway.example '<id>'
