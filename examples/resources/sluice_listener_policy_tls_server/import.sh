# Import id: the gateway's id, a slash, then this entity's id.
terraform import sluice_listener_policy_tls_server.example '<gateway_id>/<id>'
