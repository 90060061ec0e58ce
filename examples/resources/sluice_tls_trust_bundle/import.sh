# Import id: the gateway's id, a slash, then this entity's id.
terraform import sluice_tls_trust_bundle.example '<gateway_id>/<id>'
