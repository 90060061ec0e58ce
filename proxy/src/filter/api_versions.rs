//! ApiVersions capping, always in every chain: a client is offered only
//! the versions this proxy's Kafka library can decode, so any frame a
//! filter may need to read is one it understands, and no API the proxy
//! refuses to carry.

use kafka_protocol::messages::{ApiKey, ResponseKind};

use super::{Context, Filter, InFlight, Interest, Verdict};
use crate::kafka::request;

/// Caps advertised API versions to what the proxy knows.
#[derive(Debug, Default)]
pub struct ApiVersionsCap;

impl Filter for ApiVersionsCap {
    fn name(&self) -> &'static str {
        "api_versions_cap"
    }

    fn interest(&self) -> Interest {
        Interest::new().responses(ApiKey::ApiVersions, ..)
    }

    fn on_response(
        &self,
        _cx: &mut Context<'_>,
        body: &mut ResponseKind,
        _in_flight: &InFlight,
    ) -> Verdict {
        if let ResponseKind::ApiVersions(versions) = body {
            versions
                .api_keys
                .retain_mut(|v| match ApiKey::try_from(v.api_key) {
                    Ok(_) if !request::forwardable(v.api_key) => false,
                    Ok(k) => {
                        v.max_version = v.max_version.min(k.valid_versions().max);
                        v.min_version <= v.max_version
                    }
                    Err(_) => false,
                });
        }
        Verdict::Forward
    }
}
