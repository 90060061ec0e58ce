# Import id: the gateway's id, a slash, then this entity's id.
terraform import sluice_data_plane_certificate.example '<gateway_id>/<id>'
