# Import id: the gateway's id, a slash, then this entity's id.
terraform import sluice_static_key.example '<gateway_id>/<id>'
