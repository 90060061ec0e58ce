//! The admin API client the provider uses (`endpoint`, `token`,
//! `ca_certificate`).

use sluice_proto::admin::v1::admin_service_client::AdminServiceClient;
use tonic::{
    Request, Status,
    metadata::MetadataValue,
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
};

/// An authenticated admin client.
pub type Admin = AdminServiceClient<InterceptedService<Channel, Bearer>>;

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<tonic::metadata::Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// Connects (lazily) to the admin API.
pub fn connect(endpoint: &str, token: &str, ca_pem: Option<&str>) -> anyhow::Result<Admin> {
    let mut target = Endpoint::from_shared(endpoint.to_string())
        .map_err(|e| anyhow::anyhow!("endpoint {endpoint:?}: {e}"))?
        .connect_timeout(std::time::Duration::from_secs(10));
    if let Some(ca) = ca_pem.filter(|c| !c.trim().is_empty()) {
        target =
            target.tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)))?;
    }
    let bearer: MetadataValue<_> = format!("Bearer {token}")
        .parse()
        .map_err(|_| anyhow::anyhow!("token contains characters a header cannot carry"))?;
    Ok(AdminServiceClient::with_interceptor(
        target.connect_lazy(),
        Bearer(bearer),
    ))
}
