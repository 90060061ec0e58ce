//! The request pump: client ▸ chain ▸ broker. Frames nobody intercepts
//! go on as the bytes that came in; every request that expects an answer
//! is queued in the in-flight FIFO before it is sent, so the response
//! pump can match answers by order and answer short-circuited requests
//! in their place.

use kafka_protocol::messages::ApiKey;
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt},
    sync::mpsc,
};

use super::{Pending, Throttled, binding::Binding};
use crate::{
    auth,
    filter::{Context, Findings, InFlight, LifetimeCap, Notes, RequestOutcome},
    hop::{Hop, HopError, Kind},
    kafka::{
        encoded,
        frame::{self, FrameError, FrameReader},
        request,
    },
    node::Node,
    quota::Meter,
};

/// The longest a request waits for its quota buckets to be out of debt
/// (a client's request timeout is 30 s by default): a client still
/// waiting then keeps sending over its quota, and is closed.
const MAX_HOLD: std::time::Duration = std::time::Duration::from_secs(20);
/// How often a held request looks at its buckets again (shares change).
const HOLD_STEP: std::time::Duration = std::time::Duration::from_secs(1);

/// What a configuration change means for a waiting connection: `Some`
/// ends it (its port is gone, or its path is refused now).
fn changed_path(binding: &mut Binding) -> Option<Result<End, HopError>> {
    match binding.current() {
        None => Some(Ok(End::Drain)),
        // Configuration this node cannot enforce now applies to open
        // connections too.
        Some(route) => route.refused.clone().map(Err),
    }
}

/// How the request side ended without an error.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// The client closed its connection.
    ClientClosed,
    /// The port is no longer routed: take no more requests, answer what
    /// is in flight.
    Drain,
}

/// Reads requests until the client leaves, the port is removed or a hop
/// fails.
pub(crate) async fn pump<R, W>(
    node: &Node,
    mut binding: Binding,
    meter: &Meter,
    mut client: FrameReader<R>,
    mut upstream: W,
    in_flight: mpsc::Sender<Pending>,
) -> Result<End, HopError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut changes = node.config.watch();
    let mut watching = true;
    let mut first = true;
    loop {
        // One deadline per request: configuration changes while waiting
        // do not restart it.
        let (wait, waiting_for) = if first {
            (node.limits.handshake_timeout, "a first")
        } else {
            (node.limits.idle_timeout, "another")
        };
        // A throttled connection is not read until its throttle has
        // passed (KIP-219's muted channel): its requests wait in its socket.
        while let Some(until) = meter.muted_until() {
            tokio::select! {
                () = tokio::time::sleep_until(until.into()) => {}
                changed = changes.changed(), if watching => match changed {
                    Err(_) => watching = false,
                    Ok(()) => if let Some(end) = changed_path(&mut binding) {
                        return end;
                    },
                },
            }
        }
        let deadline = tokio::time::Instant::now() + wait;
        let read = loop {
            tokio::select! {
                read = tokio::time::timeout_at(deadline, client.next()) => break read,
                changed = changes.changed(), if watching => match changed {
                    Err(_) => watching = false,
                    Ok(()) => if let Some(end) = changed_path(&mut binding) {
                        return end;
                    },
                },
            }
        };
        // The policy hop's quotas, before anything else is decided for the
        // request: it is counted once its buckets are out of debt, and
        // waits until then (looking again every second, as shares change;
        // configuration that changes meanwhile applies to it). A client
        // that leaves while its request waits gets it dropped, not sent;
        // one still waiting after MAX_HOLD keeps sending over its quota
        // and is closed.
        let mut throttle = std::time::Duration::ZERO;
        if let Ok(Ok(Some(frame))) = &read
            && let Some((api_key, _, _)) = frame::request_key(frame.body_slice())
        {
            let client_id = frame::request_client_id(frame.body_slice());
            let held = tokio::time::Instant::now();
            let mut first_try = true;
            while let Some(route) = binding.current().cloned()
                && let Some(quotas) = &route.virtual_cluster.quotas
            {
                let wait = match meter.try_request(
                    quotas,
                    api_key,
                    client_id,
                    frame.wire().len(),
                    first_try,
                ) {
                    Ok(earned) => {
                        throttle = earned;
                        break;
                    }
                    Err(wait) => wait,
                };
                first_try = false;
                let left = MAX_HOLD.saturating_sub(held.elapsed());
                if left.is_zero() {
                    return Err(HopError::new(
                        Hop::Policy,
                        route.virtual_cluster.id.clone(),
                        Kind::QuotaExceeded,
                        format!(
                            "a request waited {MAX_HOLD:?} for its quota (the client keeps sending \
                             over it, on this connection or others): the connection is closed"
                        ),
                    ));
                }
                let watch_client = client.peek_body().is_none();
                tokio::select! {
                    () = tokio::time::sleep(wait.min(HOLD_STEP).min(left)) => {}
                    changed = changes.changed(), if watching => match changed {
                        Err(_) => watching = false,
                        Ok(()) => if let Some(end) = changed_path(&mut binding) {
                            return end;
                        },
                    },
                    filled = client.fill(), if watch_client => match filled {
                        Ok(true) => {}
                        // Gone (or broken) while its request waited: the
                        // request is dropped, never sent late.
                        Ok(false) | Err(_) => return Ok(End::ClientClosed),
                    },
                }
            }
        }
        let Some(route) = binding.current().cloned() else {
            return Ok(End::Drain);
        };
        let route = &route;
        if let Some(refusal) = &route.refused {
            return Err(refusal.clone());
        }
        let bad_frame = |message: String| {
            HopError::new(
                Hop::Listener,
                route.listener_id.clone(),
                Kind::BadFrame,
                message,
            )
        };
        let frame = match read {
            Ok(Ok(Some(frame))) => frame,
            Ok(Ok(None)) => return Ok(End::ClientClosed),
            // A client that resets its connection left; it sent nothing bad.
            Ok(Err(FrameError::Io(e)))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                return Ok(End::ClientClosed);
            }
            Ok(Err(e)) => return Err(bad_frame(format!("client: {e}"))),
            Err(_) => {
                return Err(HopError::new(
                    Hop::Listener,
                    route.listener_id.clone(),
                    Kind::Timeout,
                    format!(
                        "the client sent no {waiting_for} whole request within {wait:?} ({} bytes of one buffered)",
                        client.buffered()
                    ),
                ));
            }
        };
        first = false;
        let body = frame.body();
        let Some((api_key, version, correlation_id)) = frame::request_key(&body) else {
            return Err(bad_frame("request shorter than its header".into()));
        };
        if !request::forwardable(api_key) {
            return Err(HopError::new(
                Hop::VirtualCluster,
                route.virtual_cluster.id.clone(),
                Kind::UnsupportedApi,
                format!(
                    "api_key={api_key}: its answers carry broker addresses this proxy does not rewrite, or the proxy does not know it"
                ),
            ));
        }
        if version < 0 {
            // No Kafka API has one; such a frame would pass every filter's
            // interest (which is by version) unexamined.
            return Err(bad_frame(format!(
                "api_key={api_key} with a negative version {version}"
            )));
        }
        if request::api_versions_too_new(api_key, version) {
            let answer = request::unsupported_api_versions(correlation_id);
            if in_flight.send(Pending::Local(answer)).await.is_err() {
                return Ok(End::ClientClosed);
            }
            continue;
        }
        // The auth hop on an admitted connection: SASL (re-authentication)
        // and the end of a session with an expiry.
        let sasl =
            api_key == ApiKey::SaslHandshake as i16 || api_key == ApiKey::SaslAuthenticate as i16;
        let mut lifetime_cap = None;
        if sasl || binding.live().expires_at.is_some() {
            let client_address = binding.hello().address;
            let vc = route.virtual_cluster.clone();
            let decided = auth::in_session(
                node,
                &vc,
                binding.live_mut(),
                client_address,
                api_key,
                version,
                correlation_id,
                &body,
            )
            .await;
            match decided {
                auth::InSession::Pass => {}
                auth::InSession::Relay(cap) => lifetime_cap = Some(cap),
                auth::InSession::Answer(answer) => {
                    if in_flight.send(Pending::Local(answer)).await.is_err() {
                        return Ok(End::ClientClosed);
                    }
                    continue;
                }
                auth::InSession::Close(answer, error) => {
                    // The answer goes out in its turn, then the
                    // connection drains and closes.
                    node.report(&error);
                    if let Some(answer) = answer {
                        let _ = in_flight.send(Pending::Local(answer)).await;
                    }
                    return Ok(End::Drain);
                }
            }
        }
        let Some(expects_response) = request::expects_response(api_key, version, &body) else {
            // An answer expected where none comes (or the reverse) would
            // shift every later answer onto the wrong request.
            return Err(bad_frame(
                "a produce request whose acks cannot be read".into(),
            ));
        };
        let chain = &route.virtual_cluster.chain;
        let mut notes = Notes::default();
        // The throttle the request earned at the policy hop goes into its
        // answer.
        if !throttle.is_zero() {
            notes.put(Throttled(throttle));
        }
        if let Some(cap) = lifetime_cap {
            notes.put(LifetimeCap(cap));
        }
        let outcome = if chain.wants_request(api_key, version) {
            let mut findings = Findings::default();
            let principal = &binding.live().session.principal;
            let mut cx = Context {
                route,
                principal: Some(principal),
                notes: &mut notes,
                findings: &mut findings,
            };
            let outcome = chain.on_request(&mut cx, api_key, version, body);
            if !findings.is_empty() {
                node.act_on(&route.virtual_cluster.backend.id, findings);
            }
            Some(outcome?)
        } else {
            None
        };
        if let Some(RequestOutcome::Respond(answer)) = outcome {
            if expects_response && in_flight.send(Pending::Local(answer)).await.is_err() {
                return Ok(End::ClientClosed);
            }
            continue;
        }
        if expects_response {
            let entry = InFlight {
                api_key,
                version,
                correlation_id,
            };
            if in_flight
                .send(Pending::Broker(entry, notes, route.clone()))
                .await
                .is_err()
            {
                // The response side ended (its error is the one reported).
                return Ok(End::ClientClosed);
            }
        }
        let sent = match &outcome {
            Some(RequestOutcome::Forward(rewritten)) => {
                encoded::write_frame(&mut upstream, rewritten).await
            }
            _ => upstream.write_all(frame.wire()).await,
        };
        if let Err(e) = sent {
            return Err(HopError::new(
                Hop::BackendCluster,
                route.virtual_cluster.backend.id.clone(),
                Kind::WriteFailed,
                e.to_string(),
            ));
        }
    }
}
