//! SASL on a connection that is already admitted, and the end of its
//! session. The gateway answers `session_lifetime_ms = 0` (no expiry) for
//! passwords, so SASL on such a connection is out of order; an
//! OAUTHBEARER session the gateway checked lasts until its token's `exp`
//! (KIP-368): the client re-authenticates on the open connection with a
//! new token for the same `sub` (checked by the gateway: answered for
//! `terminate`, then relayed for `validate_forward`), and a connection
//! that has not re-authenticated by then is closed at its next request.
//! Sessions relayed unchecked (passthrough) leave all of this to the
//! broker.

use std::{sync::Arc, time::SystemTime};

use bytes::Bytes;
use kafka_protocol::{
    messages::{ApiKey, RequestHeader, SaslAuthenticateRequest, SaslHandshakeRequest},
    protocol::Decodable,
};
use sluice_proto::admin::v1::Mediation;
use tokio::time::Instant;

use super::{
    ILLEGAL_SASL_STATE, Rule, Rules, SASL_AUTHENTICATION_FAILED, Session,
    UNSUPPORTED_SASL_MECHANISM, answers,
    check::{Refused, check, echo, lifetime_ms},
    failed,
};
use crate::{
    config::VirtualCluster,
    hop::{Hop, HopError},
    node::Node,
};

/// A connection's authentication as it goes on.
#[derive(Debug, Clone)]
pub struct Live {
    /// How the client was admitted.
    pub session: Arc<Session>,
    /// The rule that admits it (as it was when it last did).
    pub admitted_by: Option<Rule>,
    /// When the session ends unless renewed.
    pub expires_at: Option<SystemTime>,
    /// A re-authentication's SaslHandshake was answered; its
    /// SaslAuthenticate is next.
    renewing: bool,
}

impl Live {
    /// The state of a connection admitted as `session` under `rules`.
    pub fn new(session: Session, rules: &Rules) -> Live {
        Live {
            admitted_by: rules.rule(session.rule).cloned(),
            expires_at: session.expires_at,
            session: Arc::new(session),
            renewing: false,
        }
    }

    /// Whether the gateway checks this session's tokens (and so its
    /// re-authentication).
    fn checked_oauth(&self) -> Option<Mediation> {
        match &self.admitted_by {
            Some(Rule::Oauth(o)) if o.validator.is_some() => Some(o.mediation()),
            _ => None,
        }
    }
}

/// What a request on an admitted connection gets.
#[derive(Debug)]
pub enum InSession {
    /// Carried on as any request.
    Pass,
    /// Carried on, and its answer's session lifetime capped to this
    /// (milliseconds): a re-authentication the gateway checked and relays.
    Relay(i64),
    /// The gateway's answer, in the request's turn.
    Answer(Bytes),
    /// The connection ends: after this answer, if any, with this error.
    Close(Option<Bytes>, HopError),
}

/// Decides a request of an admitted connection: SASL is answered (or
/// checked and relayed) as the session allows; anything after the
/// session's end closes the connection.
#[allow(clippy::too_many_arguments)]
pub async fn in_session(
    node: &Node,
    vc: &VirtualCluster,
    live: &mut Live,
    client: std::net::SocketAddr,
    api_key: i16,
    version: i16,
    correlation_id: i32,
    body: &Bytes,
) -> InSession {
    let mechanism = live.session.mechanism;
    let client = &client.to_string();
    let sasl =
        api_key == ApiKey::SaslHandshake as i16 || api_key == ApiKey::SaslAuthenticate as i16;
    if !sasl {
        return match live.expires_at {
            Some(at) if SystemTime::now() >= at => InSession::Close(
                None,
                failed(
                    node,
                    &vc.id,
                    mechanism,
                    client,
                    format!(
                        "the session of {} ended at its token's exp without re-authentication \
                         (KIP-368); the connection is closed",
                        live.session.principal
                    ),
                ),
            ),
            _ => InSession::Pass,
        };
    }
    let refuse = |why: String| failed(node, &vc.id, mechanism, client, why);
    let Some(checking) = live.checked_oauth() else {
        if live.session.relayed {
            // The broker checked it and answers re-authentication too; the
            // principal may not change under the gateway's feet.
            return match relayed_reauthentication(&live.session, api_key, version, body) {
                Ok(()) => InSession::Pass,
                Err(why) => InSession::Close(None, refuse(why)),
            };
        }
        let answer = if api_key == ApiKey::SaslHandshake as i16 {
            let code = if vc.auth.takes_sasl() {
                ILLEGAL_SASL_STATE
            } else {
                UNSUPPORTED_SASL_MECHANISM
            };
            answers::handshake(correlation_id, version, code, &[])
        } else {
            answers::authenticate(
                correlation_id,
                version,
                ILLEGAL_SASL_STATE,
                Some(
                    "this connection is already authenticated; the gateway offers no \
                      re-authentication for it",
                ),
                0,
            )
        };
        if !vc.auth.takes_sasl() && api_key == ApiKey::SaslHandshake as i16 {
            node.report(&failed(
                node,
                &vc.id,
                "UNSUPPORTED",
                client,
                "the client offered SASL, and this virtual cluster takes none (its rules are \
                 anonymous / client_certificate)"
                    .into(),
            ));
        }
        return match answer {
            Some(a) => InSession::Answer(a),
            None => InSession::Close(
                None,
                refuse(format!(
                    "SASL api_key={api_key} v{version}: a version the gateway cannot answer"
                )),
            ),
        };
    };
    // An OAUTHBEARER session the gateway checks: re-authentication.
    if api_key == ApiKey::SaslHandshake as i16 {
        let asked = decode::<SaslHandshakeRequest>(body, api_key, version)
            .map(|r| r.mechanism.to_string())
            .unwrap_or_default();
        if asked != "OAUTHBEARER" {
            return InSession::Close(
                answers::handshake(
                    correlation_id,
                    version,
                    UNSUPPORTED_SASL_MECHANISM,
                    &["OAUTHBEARER"],
                ),
                refuse(format!(
                    "re-authentication with {} instead of OAUTHBEARER",
                    echo(&asked)
                )),
            );
        }
        live.renewing = true;
        return match checking {
            // Relayed: the broker answers the handshake too.
            Mediation::ValidateForward => InSession::Pass,
            _ => answers::handshake(correlation_id, version, 0, &["OAUTHBEARER"]).map_or_else(
                || InSession::Close(None, refuse("unanswerable SaslHandshake version".into())),
                InSession::Answer,
            ),
        };
    }
    if !std::mem::take(&mut live.renewing) {
        return InSession::Close(
            answers::authenticate(
                correlation_id,
                version,
                ILLEGAL_SASL_STATE,
                Some("SaslAuthenticate before SaslHandshake"),
                0,
            ),
            refuse("SaslAuthenticate without SaslHandshake on an open connection".into()),
        );
    }
    let auth_bytes = decode::<SaslAuthenticateRequest>(body, api_key, version)
        .map(|r| r.auth_bytes)
        .unwrap_or_default();
    let Some(rule) = &live.admitted_by else {
        return InSession::Close(None, refuse("no rule admits this session".into()));
    };
    let deadline = Instant::now() + node.limits.handshake_timeout;
    let told = |text: &str| {
        answers::authenticate(
            correlation_id,
            version,
            SASL_AUTHENTICATION_FAILED,
            Some(text),
            0,
        )
    };
    match check(rule, &auth_bytes, deadline, &vc.dns_label).await {
        Ok(checked) if checked.user == live.session.principal.name() => {
            live.expires_at = checked.expires_at;
            tracing::debug!(
                client = %client,
                virtual_cluster = vc.id,
                principal = %live.session.principal,
                lifetime_ms = lifetime_ms(checked.expires_at),
                "session renewed (KIP-368 re-authentication)"
            );
            match checking {
                Mediation::ValidateForward => InSession::Relay(lifetime_ms(checked.expires_at)),
                _ => answers::authenticate(
                    correlation_id,
                    version,
                    0,
                    None,
                    lifetime_ms(checked.expires_at),
                )
                .map_or_else(
                    || {
                        InSession::Close(
                            None,
                            refuse("unanswerable SaslAuthenticate version".into()),
                        )
                    },
                    InSession::Answer,
                ),
            }
        }
        Ok(checked) => InSession::Close(
            told("Authentication failed: re-authentication must keep the principal"),
            refuse(format!(
                "re-authentication as {} on a session of {}",
                echo(&checked.user),
                live.session.principal
            )),
        ),
        Err(Refused {
            unanswered: Some(kind),
            why,
            ..
        }) => InSession::Close(
            None,
            HopError::new(Hop::Auth, &vc.id, kind, format!("re-authentication: {why}"))
                .with_detail(mechanism),
        ),
        Err(no) => InSession::Close(
            told(&no.told),
            refuse(format!("re-authentication: {}", no.why)),
        ),
    }
}

/// A request body decoded after its header.
fn decode<T: Decodable>(body: &Bytes, api_key: i16, version: i16) -> Option<T> {
    let key = ApiKey::try_from(api_key).ok()?;
    let mut body = body.clone();
    RequestHeader::decode(&mut body, key.request_header_version(version)).ok()?;
    T::decode(&mut body, version).ok()
}

/// Whether a relayed session's re-authentication message may go to the
/// broker: the same mechanism, and a first message naming the same user.
/// What the gateway cannot read is refused (fail closed): the principal
/// must never change under the gateway's feet.
fn relayed_reauthentication(
    session: &Session,
    api_key: i16,
    version: i16,
    body: &Bytes,
) -> Result<(), String> {
    let mechanism = session.mechanism;
    if api_key == ApiKey::SaslHandshake as i16 {
        let asked = decode::<SaslHandshakeRequest>(body, api_key, version)
            .map(|r| r.mechanism.to_string())
            .unwrap_or_default();
        return if asked == mechanism {
            Ok(())
        } else {
            Err(format!(
                "re-authentication with {} on a {mechanism} session of {}",
                echo(&asked),
                session.principal
            ))
        };
    }
    let Some(request) = decode::<SaslAuthenticateRequest>(body, api_key, version) else {
        return Err("a re-authentication request that cannot be read".into());
    };
    let auth_bytes = &request.auth_bytes;
    // SCRAM's later messages (client-final, `c=...`) name no user; its
    // first carries the gs2 header and `n=`.
    if mechanism.starts_with("SCRAM-") && auth_bytes.starts_with(b"c=") {
        return Ok(());
    }
    match super::gate::relayed_user(mechanism, auth_bytes) {
        Some(user) if user == session.principal.name() => Ok(()),
        // An opaque token, or the client's acknowledgement of a broker's
        // refusal (RFC 7628 §3.2.3): the broker holds the principal
        // (KIP-368 refuses a switch) and answers.
        None if mechanism == "OAUTHBEARER" => Ok(()),
        Some(user) => Err(format!(
            "re-authentication as {} on a session of {}",
            echo(&user),
            session.principal
        )),
        None => Err(format!(
            "a {mechanism} re-authentication naming no user the gateway can read, on a session of {}",
            session.principal
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::BytesMut;
    use kafka_protocol::{
        messages::{SaslAuthenticateResponse, SaslHandshakeResponse},
        protocol::{Encodable, StrBytes},
    };

    use super::*;
    use crate::{
        auth::{Principal, Rules},
        config::{ConfigStore, compiled::Backend},
        filter::Chain,
        hop::Kind,
        telemetry::Telemetry,
    };

    fn node() -> Node {
        Node::new(
            Arc::new(ConfigStore::new(Default::default())),
            Arc::new(Telemetry::default()),
        )
    }

    fn vc(auth: Rules) -> VirtualCluster {
        VirtualCluster {
            id: "vc".into(),
            dns_label: "team-a".into(),
            backend: Arc::new(Backend::compile("kafka", &Default::default())),
            chain: Chain::new(Vec::new()),
            auth,
            quotas: None,
            refused: None,
        }
    }

    fn session(mechanism: &'static str, relayed: bool, expires_at: Option<SystemTime>) -> Session {
        Session {
            principal: Principal::user("alice"),
            mechanism,
            rule: 0,
            relayed,
            expires_at,
        }
    }

    fn body<T: Encodable>(key: ApiKey, version: i16, request: &T) -> Bytes {
        let mut out = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .encode(&mut out, key.request_header_version(version))
            .unwrap();
        request.encode(&mut out, version).unwrap();
        out.freeze()
    }

    async fn decide(
        vc: &VirtualCluster,
        live: &mut Live,
        key: ApiKey,
        version: i16,
        body: &Bytes,
    ) -> InSession {
        in_session(
            &node(),
            vc,
            live,
            "127.0.0.1:1".parse().unwrap(),
            key as i16,
            version,
            7,
            body,
        )
        .await
    }

    #[tokio::test]
    async fn a_session_past_its_exp_is_closed_at_its_next_request() {
        let vc = vc(Rules::default());
        let heartbeat = body(
            ApiKey::Heartbeat,
            0,
            &kafka_protocol::messages::HeartbeatRequest::default(),
        );
        let mut live = Live::new(
            session(
                "OAUTHBEARER",
                false,
                Some(SystemTime::now() + Duration::from_secs(60)),
            ),
            &vc.auth,
        );
        assert!(matches!(
            decide(&vc, &mut live, ApiKey::Heartbeat, 0, &heartbeat).await,
            InSession::Pass
        ));
        live.expires_at = Some(SystemTime::now() - Duration::from_secs(1));
        match decide(&vc, &mut live, ApiKey::Heartbeat, 0, &heartbeat).await {
            InSession::Close(None, e) => {
                assert_eq!((e.hop, e.kind), (Hop::Auth, Kind::AuthFailed));
                assert!(e.message.contains("KIP-368"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn sasl_on_a_gateway_admitted_connection_is_answered_never_forwarded() {
        let vc = vc(Rules::default());
        let mut live = Live::new(session("ANONYMOUS", false, None), &vc.auth);
        let handshake = body(
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        );
        let InSession::Answer(mut answer) =
            decide(&vc, &mut live, ApiKey::SaslHandshake, 1, &handshake).await
        else {
            panic!("forwarded")
        };
        kafka_protocol::messages::ResponseHeader::decode(&mut answer, 0).unwrap();
        let answer = SaslHandshakeResponse::decode(&mut answer, 1).unwrap();
        assert_eq!(answer.error_code, UNSUPPORTED_SASL_MECHANISM);
        let authenticate = body(
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default(),
        );
        let InSession::Answer(mut answer) =
            decide(&vc, &mut live, ApiKey::SaslAuthenticate, 2, &authenticate).await
        else {
            panic!("forwarded")
        };
        kafka_protocol::messages::ResponseHeader::decode(&mut answer, 1).unwrap();
        let answer = SaslAuthenticateResponse::decode(&mut answer, 2).unwrap();
        assert_eq!(answer.error_code, ILLEGAL_SASL_STATE);
    }

    #[tokio::test]
    async fn relayed_re_authentication_may_not_switch_principal() {
        let vc = vc(Rules::default());
        let mut live = Live::new(session("PLAIN", true, None), &vc.auth);
        let as_user = |user: &str| {
            body(
                ApiKey::SaslAuthenticate,
                2,
                &SaslAuthenticateRequest::default()
                    .with_auth_bytes(Bytes::from(format!("\0{user}\0pw"))),
            )
        };
        let same = as_user("alice");
        assert!(matches!(
            decide(&vc, &mut live, ApiKey::SaslAuthenticate, 2, &same).await,
            InSession::Pass
        ));
        let other = as_user("mallory");
        match decide(&vc, &mut live, ApiKey::SaslAuthenticate, 2, &other).await {
            InSession::Close(None, e) => assert!(e.message.contains("mallory"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn relayed_reauthentication_keeps_mechanism_and_user_or_is_refused() {
        let handshake = |m: &str| {
            let request =
                SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(m.into()));
            (
                ApiKey::SaslHandshake,
                1,
                body(ApiKey::SaslHandshake, 1, &request),
            )
        };
        let authenticate = |bytes: &'static [u8]| {
            let request =
                SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(bytes));
            (
                ApiKey::SaslAuthenticate,
                2,
                body(ApiKey::SaslAuthenticate, 2, &request),
            )
        };
        let check = |s: &Session, (key, version, b): (ApiKey, i16, Bytes)| {
            relayed_reauthentication(s, key as i16, version, &b)
        };
        let plain = session("PLAIN", true, None);
        assert_eq!(check(&plain, handshake("PLAIN")), Ok(()));
        assert_eq!(
            check(&plain, authenticate(b"\0alice\0new-password")),
            Ok(())
        );
        for (refused, says) in [
            (
                handshake("SCRAM-SHA-512"),
                "re-authentication with \"SCRAM-SHA-512\"",
            ),
            (authenticate(b"\0mallory\0pw"), "as \"mallory\""),
            (authenticate(b"alice\0mallory\0pw"), "naming no user"),
            (authenticate(b"garbage"), "naming no user"),
        ] {
            let err = check(&plain, refused).unwrap_err();
            assert!(err.contains(says), "{err:?} does not say {says:?}");
        }
        let token_as_password: &'static [u8] = Box::leak(
            [b"\0alice\0".as_slice(), &[b'x'; 3000]]
                .concat()
                .into_boxed_slice(),
        );
        assert_eq!(
            check(&plain, authenticate(token_as_password)),
            Ok(()),
            "the broker's password, however long, is the broker's business"
        );
        let oauth = session("OAUTHBEARER", true, None);
        assert_eq!(
            check(
                &oauth,
                authenticate(b"n,,\x01auth=Bearer opaque-token\x01\x01")
            ),
            Ok(()),
            "an opaque token: the broker holds the principal"
        );
        assert_eq!(
            check(&oauth, authenticate(b"\x01")),
            Ok(()),
            "RFC 7628 acknowledgement"
        );
        let scram = session("SCRAM-SHA-512", true, None);
        assert_eq!(check(&scram, authenticate(b"n,,n=alice,r=abc")), Ok(()));
        assert_eq!(
            check(&scram, authenticate(b"c=biws,r=abcdef,p=xyz")),
            Ok(())
        );
        assert!(check(&scram, authenticate(b"n,,n=bob,r=abc")).is_err());
        assert!(check(&scram, authenticate(b"y,,r=abc")).is_err());
    }
}
