# Import id: the gateway's id, a slash, then this entity's id.
terraform import sluice_consume_policy_skip_record.example '<gateway_id>/<id>'
