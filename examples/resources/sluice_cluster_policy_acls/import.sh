# Import id: the gateway's id, a slash, then this entity's id.
terraform import sluice_cluster_policy_acls.example '<gateway_id>/<id>'
