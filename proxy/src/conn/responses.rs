//! The response pump, the one writer of the client socket: it takes the
//! in-flight FIFO in order, writing an answer a filter gave in place of
//! the broker, or reading the broker's next response, checking it
//! answers that request, running the chain over it if some filter
//! intercepts it, and writing it on.

use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt},
    sync::mpsc,
};

use std::time::Duration;

use super::{Pending, Throttled};
use crate::{
    filter::{Context, Findings},
    hop::{Hop, HopError, Kind},
    kafka::{
        encoded,
        frame::{self, FrameReader},
    },
    node::Node,
    quota::{Meter, throttle},
};

/// Answers every in-flight request in order until the request side is
/// done and the FIFO is empty, the broker closes, or a hop fails.
pub(crate) async fn pump<R, W>(
    node: &Node,
    meter: &Meter,
    mut upstream: FrameReader<R>,
    mut client: W,
    mut in_flight: mpsc::Receiver<Pending>,
) -> Result<(), HopError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    while let Some(next) = in_flight.recv().await {
        let (entry, mut notes, route) = match next {
            Pending::Local(answer) => {
                if frame::write_frame(&mut client, &answer).await.is_err() {
                    return Ok(());
                }
                continue;
            }
            Pending::Broker(entry, notes, route) => (entry, notes, route),
        };
        // The answer goes through the chain (and mapping) its request
        // went through, even if the configuration changed in between.
        let backend = &route.virtual_cluster.backend.id;
        let fail =
            |kind, message: String| HopError::new(Hop::BackendCluster, backend, kind, message);
        let frame = match upstream.next().await {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(()),
            Err(e) => return Err(fail(Kind::BadFrame, format!("broker: {e}"))),
        };
        let body = frame.body();
        match frame::response_correlation(&body) {
            Some(c) if c == entry.correlation_id => {}
            got => {
                return Err(fail(
                    Kind::OutOfOrderResponse,
                    format!(
                        "expected the answer to correlation id {} (api_key={} v{}), got {got:?}",
                        entry.correlation_id, entry.api_key, entry.version
                    ),
                ));
            }
        }
        // The policy hop's quotas: a Fetch answer's bytes count, and a
        // throttle earned by it or its request goes into it.
        let mut throttle = notes.take::<Throttled>().map_or(Duration::ZERO, |t| t.0);
        if let Some(quotas) = &route.virtual_cluster.quotas {
            throttle = throttle.max(meter.on_response(quotas, entry.api_key, frame.wire().len()));
        }
        let chain = &route.virtual_cluster.chain;
        let filtered = if chain.wants_response(entry.api_key, entry.version) {
            let mut findings = Findings::default();
            let mut cx = Context {
                route: &route,
                principal: None,
                notes: &mut notes,
                findings: &mut findings,
            };
            let out = chain.on_response(&mut cx, &entry, body.clone());
            if !findings.is_empty() {
                node.act_on(backend, findings);
            }
            Some(out?)
        } else {
            None
        };
        let sent = match (filtered, throttle.is_zero()) {
            (Some(out), true) => encoded::write_frame(&mut client, &out).await,
            (None, true) => client.write_all(frame.wire()).await,
            (filtered, false) => {
                let body = filtered.map_or(body, |out| out.to_bytes());
                let ms = throttle::millis(throttle);
                let stamped = throttle::stamp(entry.api_key, entry.version, body.clone(), ms)
                    .unwrap_or_else(|e| {
                        node.report(&fail(
                            Kind::UndecodableResponse,
                            format!("throttle_time_ms not set: {e}"),
                        ));
                        body
                    });
                frame::write_frame(&mut client, &stamped).await
            }
        };
        if sent.is_err() {
            return Ok(());
        }
    }
    Ok(())
}
