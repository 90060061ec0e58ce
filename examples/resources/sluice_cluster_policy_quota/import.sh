# Import id: the gateway's id, a slash, then this entity's id.
terraform import sluice_cluster_policy_quota.example '<gateway_id>/<id>'
