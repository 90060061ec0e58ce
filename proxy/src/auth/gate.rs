//! The gate: a connection's SASL exchange with a virtual cluster whose
//! rules take SASL, before anything else reaches it. Requests are taken
//! one at a time (the client waits for each answer anyway):
//!
//! - ApiVersions goes to the broker (through the chain, so versions are
//!   capped) on a bare upstream, one not yet authenticated;
//! - SaslHandshake picks the first rule offering the mechanism: the
//!   gateway answers it for `terminate`, relays it for `passthrough`, and
//!   answers `UNSUPPORTED_SASL_MECHANISM` with the offered list otherwise;
//! - SaslAuthenticate is checked by the gateway (`terminate`: then the
//!   upstream authenticates with the backend cluster's credentials) or
//!   relayed until the broker's last answer (`passthrough`: the upstream
//!   stays authenticated as the client);
//! - any other request is admitted by an `anonymous` or
//!   `client_certificate` rule, or ends the connection as unauthenticated.
//!
//! Everything is bounded: one handshake deadline for the whole exchange
//! and at most [`MAX_EXCHANGES`] requests.

use std::{sync::Arc, time::SystemTime};

use bytes::Bytes;
use kafka_protocol::{
    messages::{
        ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
        SaslHandshakeRequest, SaslHandshakeResponse,
    },
    protocol::Decodable,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    time::Instant,
};

use super::{
    Principal, Rule, SASL_AUTHENTICATION_FAILED, Session, UNSUPPORTED_SASL_MECHANISM, answers,
    check::{Refused, check, echo, lifetime_ms, unverified_subject},
    failed, plain,
    upstream::{Dialled, bare, relay, with_gateway_credentials},
};
use crate::{
    filter::{LifetimeCap, Notes},
    hop::{Hop, HopError, Kind},
    io::Stream,
    kafka::{
        frame::{self, FrameReader},
        request,
    },
    listener::{handshake::Hello, routes::Route},
    node::Node,
};

/// Requests a client may send before it is authenticated.
pub const MAX_EXCHANGES: usize = 16;

/// A connection the gate let in.
pub struct Admitted {
    /// How it was admitted.
    pub session: Session,
    /// Its upstream, authenticated as the session requires.
    pub upstream: Stream,
}

/// Where the exchange is.
enum State {
    /// Nothing but ApiVersions yet.
    Start,
    /// A handshake the gateway answered: it checks the credentials.
    Checking {
        rule: usize,
        mechanism: &'static str,
    },
    /// A handshake relayed to the broker: `rounds` SaslAuthenticate
    /// exchanges relayed so far, for the user named in the first.
    Relaying {
        rule: usize,
        mechanism: &'static str,
        rounds: usize,
        user: Option<String>,
        /// The `exp` of a token the gateway checked (validate_forward).
        expires_at: Option<SystemTime>,
    },
}

/// Runs the exchange for a client of `route`'s virtual cluster; `None`
/// when the client left before it was admitted.
pub async fn admit<R, W>(
    node: &Node,
    route: &Arc<Route>,
    hello: &Hello,
    who: &str,
    requests: &mut FrameReader<R>,
    client: &mut W,
) -> Result<Option<Admitted>, HopError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let vc = &route.virtual_cluster;
    let rules = &vc.auth;
    let timeout = node.limits.handshake_timeout;
    let deadline = Instant::now() + timeout;
    let listener_error = |kind, message: String| {
        HopError::new(Hop::Listener, route.listener_id.clone(), kind, message)
    };
    let refused = |mechanism, message| failed(node, &vc.id, mechanism, who, message);
    let mut upstream: Option<Dialled> = None;
    let mut state = State::Start;
    for _ in 0..MAX_EXCHANGES {
        match tokio::time::timeout_at(deadline, requests.fill()).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return Ok(None),
            Ok(Err(e)) => return Err(listener_error(Kind::BadFrame, format!("client: {e}"))),
            Err(_) => {
                return Err(refused(
                    mechanism_of(&state),
                    format!("the client did not finish authenticating within {timeout:?}"),
                ));
            }
        }
        let Some((api_key, version, correlation_id)) =
            requests.peek_body().and_then(frame::request_key)
        else {
            return Err(listener_error(
                Kind::BadFrame,
                "request shorter than its header".into(),
            ));
        };
        let is = |key: ApiKey| api_key == key as i16;
        if !(is(ApiKey::ApiVersions) || is(ApiKey::SaslHandshake) || is(ApiKey::SaslAuthenticate)) {
            if !matches!(state, State::Start) {
                return Err(refused(
                    mechanism_of(&state),
                    format!("the client sent api_key={api_key} before its SASL exchange finished"),
                ));
            }
            let Some(session) = rules.without_sasl(hello) else {
                return Err(refused(
                    "NONE",
                    format!(
                        "the client sent api_key={api_key} without authenticating; this virtual \
                         cluster takes SASL ({})",
                        rules.mechanisms().join(", ")
                    ),
                ));
            };
            // The request stays buffered: the pumps take it from here.
            let upstream = with_gateway_credentials(node, route, upstream).await?;
            return Ok(Some(Admitted { session, upstream }));
        }
        let Ok(Some(request)) = requests.next().await else {
            return Err(listener_error(Kind::BadFrame, "request vanished".into()));
        };
        let body = request.body();
        if is(ApiKey::ApiVersions) {
            if request::api_versions_too_new(api_key, version) {
                let answer = request::unsupported_api_versions(correlation_id);
                if frame::write_frame(client, &answer).await.is_err() {
                    return Ok(None);
                }
                continue;
            }
            let dialled = bare(node, route, &mut upstream).await?;
            let answer = relay(
                node,
                route,
                dialled,
                request.wire(),
                body,
                api_key,
                version,
                deadline,
                Notes::default(),
            )
            .await?;
            if frame::write_frame(client, &answer).await.is_err() {
                return Ok(None);
            }
            continue;
        }
        if is(ApiKey::SaslHandshake) {
            let asked = decode::<SaslHandshakeRequest>(body.clone(), api_key, version)
                .map(|r| r.mechanism.to_string())
                .unwrap_or_default();
            let echo = echo(&asked);
            if !matches!(state, State::Start) {
                let _ = say(
                    client,
                    answers::handshake(correlation_id, version, super::ILLEGAL_SASL_STATE, &[]),
                )
                .await;
                return Err(refused(
                    mechanism_of(&state),
                    "a second SaslHandshake before the first exchange finished".into(),
                ));
            }
            if version == 0 {
                return Err(refused(
                    "NONE",
                    "SaslHandshake v0 (unframed SASL tokens) is not supported: use a client \
                     that authenticates with SaslAuthenticate (Kafka 1.0 and later)"
                        .into(),
                ));
            }
            let offered = rules.mechanisms();
            let Some((rule_index, rule)) = rules.for_mechanism(&asked) else {
                let _ = say(
                    client,
                    answers::handshake(
                        correlation_id,
                        version,
                        UNSUPPORTED_SASL_MECHANISM,
                        &offered,
                    ),
                )
                .await;
                return Err(refused(
                    "UNSUPPORTED",
                    format!(
                        "the client asked for mechanism {echo}; this virtual cluster offers {}",
                        offered.join(", ")
                    ),
                ));
            };
            let mechanism = rule.mechanism().unwrap_or("NONE");
            if rule.relays() {
                let dialled = bare(node, route, &mut upstream).await?;
                let answer = relay(
                    node,
                    route,
                    dialled,
                    request.wire(),
                    body,
                    api_key,
                    version,
                    deadline,
                    Notes::default(),
                )
                .await?;
                let broker = decode_response::<SaslHandshakeResponse>(&answer, api_key, version);
                if frame::write_frame(client, &answer).await.is_err() {
                    return Ok(None);
                }
                if let Some(b) = broker.filter(|b| b.error_code != 0) {
                    let theirs: Vec<&str> = b.mechanisms.iter().map(|m| m.as_str()).collect();
                    return Err(refused(
                        mechanism,
                        format!(
                            "the broker does not accept {mechanism} (error {}; it offers [{}]): \
                             passthrough needs the broker to take the mechanism",
                            b.error_code,
                            theirs.join(", ")
                        ),
                    ));
                }
                state = State::Relaying {
                    rule: rule_index,
                    mechanism,
                    rounds: 0,
                    user: None,
                    expires_at: None,
                };
            } else {
                if !say(
                    client,
                    answers::handshake(correlation_id, version, 0, &offered),
                )
                .await
                {
                    return Ok(None);
                }
                state = State::Checking {
                    rule: rule_index,
                    mechanism,
                };
            }
            continue;
        }
        // SaslAuthenticate.
        let auth_bytes = decode::<SaslAuthenticateRequest>(body.clone(), api_key, version)
            .map(|r| r.auth_bytes)
            .unwrap_or_default();
        match &mut state {
            State::Start => {
                let _ = say(
                    client,
                    answers::authenticate(
                        correlation_id,
                        version,
                        super::ILLEGAL_SASL_STATE,
                        Some("SaslAuthenticate before SaslHandshake"),
                        0,
                    ),
                )
                .await;
                return Err(refused(
                    "NONE",
                    "SaslAuthenticate before SaslHandshake".into(),
                ));
            }
            State::Checking { rule, mechanism } => {
                let (rule, mechanism) = (*rule, *mechanism);
                let Some(checking) = rules.rule(rule) else {
                    return Err(refused(mechanism, "no rule checks this mechanism".into()));
                };
                let checked = match check(checking, &auth_bytes, deadline, &vc.dns_label).await {
                    Ok(c) => c,
                    Err(Refused {
                        unanswered: Some(kind),
                        why,
                        ..
                    }) => {
                        // No answer: the client reconnects and retries.
                        return Err(
                            HopError::new(Hop::Auth, &vc.id, kind, why).with_detail(mechanism)
                        );
                    }
                    Err(no) => {
                        let _ = say(client, failure(correlation_id, version, &no.told)).await;
                        return Err(refused(mechanism, no.why));
                    }
                };
                let upstream = with_gateway_credentials(node, route, upstream).await?;
                let lifetime = lifetime_ms(checked.expires_at);
                let answer = answers::authenticate(correlation_id, version, 0, None, lifetime);
                if !say(client, answer).await {
                    return Ok(None);
                }
                return Ok(Some(Admitted {
                    session: Session {
                        principal: Principal::user(&checked.user),
                        mechanism,
                        rule,
                        relayed: false,
                        expires_at: checked.expires_at,
                    },
                    upstream,
                }));
            }
            State::Relaying {
                rule,
                mechanism,
                rounds,
                user,
                expires_at,
            } => {
                if *rounds == 0 {
                    *user = relayed_user(mechanism, &auth_bytes);
                    // validate_forward: the token is checked before the
                    // broker sees it.
                    if let Some(checking @ Rule::Oauth(o)) = rules.rule(*rule)
                        && o.validator.is_some()
                    {
                        match check(checking, &auth_bytes, deadline, &vc.dns_label).await {
                            Ok(checked) => {
                                *user = Some(checked.user);
                                *expires_at = checked.expires_at;
                            }
                            Err(Refused {
                                unanswered: Some(kind),
                                why,
                                ..
                            }) => {
                                return Err(HopError::new(Hop::Auth, &vc.id, kind, why)
                                    .with_detail(mechanism));
                            }
                            Err(no) => {
                                let _ =
                                    say(client, failure(correlation_id, version, &no.told)).await;
                                return Err(refused(mechanism, no.why));
                            }
                        }
                    }
                    // Fail closed: a relayed session needs a principal, so
                    // a first message naming no readable user (a PLAIN
                    // authzid other than the user, a malformed SCRAM
                    // client-first) never reaches the broker. OAUTHBEARER
                    // tokens may be opaque to the gateway (the broker
                    // introspects them, or names the principal by another
                    // claim): those go on, under the principal the broker
                    // accepts them for.
                    if user.is_none() && *mechanism != "OAUTHBEARER" {
                        let told = format!(
                            "Authentication failed: invalid credentials for virtual cluster {:?}",
                            vc.dns_label
                        );
                        let _ = say(client, failure(correlation_id, version, &told)).await;
                        return Err(refused(
                            mechanism,
                            "the first SASL message names no user the gateway can read".into(),
                        ));
                    }
                }
                let dialled = bare(node, route, &mut upstream).await?;
                let answer = relay(
                    node,
                    route,
                    dialled,
                    request.wire(),
                    body,
                    api_key,
                    version,
                    deadline,
                    relayed_notes(*expires_at),
                )
                .await?;
                let broker = decode_response::<SaslAuthenticateResponse>(&answer, api_key, version);
                if frame::write_frame(client, &answer).await.is_err() {
                    return Ok(None);
                }
                let name = user.clone().unwrap_or_default();
                // An OAUTHBEARER broker that refuses a token answers with
                // an error challenge first (RFC 7628 §3.2.2), not success.
                let challenge = broker
                    .as_ref()
                    .is_some_and(|b| b.error_code == 0 && !b.auth_bytes.is_empty())
                    && *mechanism == "OAUTHBEARER";
                // A SCRAM broker may refuse in its server-final message
                // (`e=invalid-proof`, RFC 5802 §7) with error code 0: only
                // `v=` (its signature) is success.
                let final_round = *rounds + 1 >= rounds_of(mechanism);
                let scram_refusal = mechanism.starts_with("SCRAM-")
                    && final_round
                    && broker
                        .as_ref()
                        .is_some_and(|b| b.error_code == 0 && !b.auth_bytes.starts_with(b"v="));
                match broker {
                    Some(b) if scram_refusal => {
                        let said = String::from_utf8_lossy(&b.auth_bytes);
                        return Err(refused(
                            mechanism,
                            format!(
                                "the broker refused {} ({})",
                                echo(&name),
                                echo(said.strip_prefix("e=").unwrap_or(&said))
                            ),
                        ));
                    }
                    Some(b) if b.error_code == 0 => {}
                    Some(b) => {
                        return Err(refused(
                            mechanism,
                            format!(
                                "the broker refused {} (error {}: {})",
                                echo(&name),
                                b.error_code,
                                echo(b.error_message.as_deref().unwrap_or("no message"))
                            ),
                        ));
                    }
                    None => {
                        return Err(refused(
                            mechanism,
                            "the broker's SaslAuthenticate answer could not be read".into(),
                        ));
                    }
                }
                *rounds += 1;
                if !challenge && *rounds >= rounds_of(mechanism) {
                    let Some(upstream) = upstream else {
                        return Err(refused(mechanism, "no upstream".into()));
                    };
                    return Ok(Some(Admitted {
                        session: Session {
                            principal: Principal::user(&name),
                            mechanism,
                            rule: *rule,
                            relayed: true,
                            expires_at: *expires_at,
                        },
                        upstream: upstream.stream,
                    }));
                }
            }
        }
    }
    Err(refused(
        mechanism_of(&state),
        format!("more than {MAX_EXCHANGES} requests without finishing authentication"),
    ))
}

/// The notes a relayed SaslAuthenticate goes with: the session lifetime
/// cap of a token the gateway checked (validate_forward).
fn relayed_notes(expires_at: Option<SystemTime>) -> Notes {
    let mut notes = Notes::default();
    if expires_at.is_some() {
        notes.put(LifetimeCap(lifetime_ms(expires_at)));
    }
    notes
}

/// A refused SaslAuthenticate, telling the client `told`.
fn failure(correlation_id: i32, version: i16, told: &str) -> Option<Bytes> {
    answers::authenticate(
        correlation_id,
        version,
        SASL_AUTHENTICATION_FAILED,
        Some(told),
        0,
    )
}

/// Writes the gateway's own answer; false when it cannot (the client
/// left, or asked in a version this proxy cannot write).
async fn say<W: AsyncWrite + Unpin>(client: &mut W, answer: Option<Bytes>) -> bool {
    match answer {
        Some(a) => frame::write_frame(client, &a).await.is_ok(),
        None => false,
    }
}

/// The mechanism the exchange is at, for counting its failure.
fn mechanism_of(state: &State) -> &'static str {
    match state {
        State::Start => "NONE",
        State::Checking { mechanism, .. } | State::Relaying { mechanism, .. } => mechanism,
    }
}

/// SaslAuthenticate round trips a relayed mechanism takes.
fn rounds_of(mechanism: &str) -> usize {
    if mechanism.starts_with("SCRAM-") {
        2
    } else {
        1
    }
}

/// The user a relayed exchange names in its first message: PLAIN's
/// authcid, SCRAM's `n=` (RFC 5802, `=2C` and `=3D` unescaped).
pub(crate) fn relayed_user(mechanism: &str, first: &[u8]) -> Option<String> {
    if mechanism == "PLAIN" {
        return plain::relayed_username(first).map(str::to_string);
    }
    if mechanism == "OAUTHBEARER" {
        return unverified_subject(first);
    }
    let text = std::str::from_utf8(first).ok()?;
    // gs2 header "n,," (or "y,,", "n,a=…,"), then "n=user,r=nonce".
    let bare = text.splitn(3, ',').nth(2)?;
    let name = bare.split(',').find_map(|a| a.strip_prefix("n="))?;
    Some(name.replace("=2C", ",").replace("=3D", "="))
}

/// A request body decoded after its header.
fn decode<T: Decodable>(mut body: Bytes, api_key: i16, version: i16) -> Option<T> {
    let key = ApiKey::try_from(api_key).ok()?;
    RequestHeader::decode(&mut body, key.request_header_version(version)).ok()?;
    T::decode(&mut body, version).ok()
}

/// A response (header included) decoded after its header.
fn decode_response<T: Decodable>(answer: &Bytes, api_key: i16, version: i16) -> Option<T> {
    let key = ApiKey::try_from(api_key).ok()?;
    let mut body = answer.clone();
    ResponseHeader::decode(&mut body, key.response_header_version(version)).ok()?;
    T::decode(&mut body, version).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayed_users_are_read_from_first_messages() {
        assert_eq!(
            relayed_user("PLAIN", b"\0alice\0pw").as_deref(),
            Some("alice")
        );
        assert_eq!(
            relayed_user("SCRAM-SHA-512", b"n,,n=bob=2Cjr,r=fyko+d2lbbFgONRv9qkxdawL").as_deref(),
            Some("bob,jr")
        );
        assert_eq!(relayed_user("SCRAM-SHA-256", b"garbage"), None);
        assert_eq!(echo("short"), "\"short\"");
        assert!(echo(&"x".repeat(500)).len() < 80);
    }
}
