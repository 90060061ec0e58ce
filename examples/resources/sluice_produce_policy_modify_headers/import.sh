# Import id: the gateway's id, a slash, then this entity's id.
terraform import sluice_produce_policy_modify_headers.example '<gateway_id>/<id>'
