# Import id: the gateway's id, a slash, then this entity's id.
terraform import sluice_event_hook.example '<gateway_id>/<id>'
