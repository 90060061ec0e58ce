//! KIP-368 session lifetimes the gateway knows better than the broker: a
//! relayed SaslAuthenticate answer (OAUTHBEARER `validate_forward`)
//! carries at most the time left on the token the gateway checked, so the
//! client re-authenticates before the gateway would end its session. The
//! auth hop leaves the cap as a note on the request; always in every
//! chain, it decodes nothing but SaslAuthenticate answers.

use kafka_protocol::messages::{ApiKey, ResponseKind};

use super::{Context, Filter, InFlight, Interest, Verdict};

/// Caps relayed session lifetimes to what the auth hop noted.
#[derive(Debug, Default)]
pub struct SessionLifetime;

/// The longest `session_lifetime_ms` a relayed answer may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifetimeCap(pub i64);

impl Filter for SessionLifetime {
    fn name(&self) -> &'static str {
        "session_lifetime"
    }

    fn interest(&self) -> Interest {
        Interest::new().responses(ApiKey::SaslAuthenticate, 1..)
    }

    fn on_response(
        &self,
        cx: &mut Context<'_>,
        body: &mut ResponseKind,
        _in_flight: &InFlight,
    ) -> Verdict {
        if let (Some(LifetimeCap(cap)), ResponseKind::SaslAuthenticate(answer)) =
            (cx.notes.get::<LifetimeCap>().copied(), body)
            && answer.error_code == 0
        {
            answer.session_lifetime_ms = if answer.session_lifetime_ms > 0 {
                answer.session_lifetime_ms.min(cap)
            } else {
                cap
            };
        }
        Verdict::Forward
    }
}
