# Import id: the gateway's id, a slash, then this entity's id.
terraform import sluice_listener.example '<gateway_id>/<id>'
