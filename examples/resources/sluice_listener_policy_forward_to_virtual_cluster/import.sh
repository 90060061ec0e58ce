# Import id: the gateway's id, a slash, then this entity's id.
terraform import sluice_listener_policy_forward_to_virtual_cluster.example '<gateway_id>/<id>'
