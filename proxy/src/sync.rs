//! The sync client: keeps one mTLS stream to the control plane, applies
//! what arrives (ACK when it applies, NACK with the reason when it does
//! not), caches it, reports status, and reconnects with jittered
//! exponential backoff, resuming from the applied revision.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use sluice_proto::dataplane::v1::{
    Ack, ConfigUpdate, DataPlaneEvents, Hello, Nack, NodeMessage, QuotaUsage,
    data_plane_sync_client::DataPlaneSyncClient, node_message, server_message,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::{
    config::{ConfigStore, cache::Cache},
    probe::Prober,
    quota::Quotas,
    telemetry::Telemetry,
};

/// First reconnect delay.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest reconnect delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often a node reports its status without being asked.
const STATUS_EVERY: Duration = Duration::from_secs(30);
/// The largest single message taken from the control plane. Snapshots
/// come in chunks of at most 1 MiB; a delta read from the log (a node back
/// from a long absence) is one message and may be larger than tonic's
/// 4 MiB default, so the cap is deliberate and bounded.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// How often quota usage is reported (the control plane splits limits
/// among the nodes by it).
const QUOTA_USAGE_EVERY: Duration = Duration::from_secs(1);
/// How often sampled event counts are sent.
const EVENTS_EVERY: Duration = Duration::from_secs(5);

/// Where and how to reach the control plane.
#[derive(Clone)]
pub struct SyncOptions {
    /// `https://host:port` of the sync endpoint.
    pub endpoint: String,
    /// PEM of the CA that signed the sync endpoint's certificate.
    pub ca_pem: String,
    /// This node's certificate (PEM).
    pub cert_pem: String,
    /// This node's key (PEM).
    pub key_pem: String,
    /// This node's stable id.
    pub node_id: String,
    /// Reported host name.
    pub hostname: String,
}

/// Exponential backoff with equal jitter.
struct Backoff {
    attempt: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let cap = BACKOFF_MIN
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(BACKOFF_MAX);
        self.attempt += 1;
        let half = cap / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// Runs the sync client until the process ends.
pub async fn run(
    options: SyncOptions,
    store: Arc<ConfigStore>,
    cache: Option<Cache>,
    telemetry: Arc<Telemetry>,
    quotas: Arc<Quotas>,
    prober: Arc<Prober>,
) {
    let mut backoff = Backoff { attempt: 0 };
    loop {
        let mut connected = false;
        let parts = Parts {
            store: &store,
            cache: cache.as_ref(),
            telemetry: &telemetry,
            quotas: &quotas,
            prober: &prober,
        };
        match session(&options, parts, &mut connected).await {
            Ok(()) => tracing::info!("control plane closed the sync stream; reconnecting"),
            Err(e) => tracing::warn!(
                hop = "control_plane",
                error = format!("{e:#}"),
                "sync stream failed"
            ),
        }
        if connected {
            backoff.attempt = 0;
        }
        let delay = backoff.next();
        tracing::info!(
            delay_ms = delay.as_millis() as u64,
            "reconnecting to the control plane"
        );
        tokio::time::sleep(delay).await;
    }
}

fn endpoint(options: &SyncOptions) -> anyhow::Result<Endpoint> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&options.ca_pem))
        .identity(Identity::from_pem(&options.cert_pem, &options.key_pem));
    Ok(Endpoint::from_shared(options.endpoint.clone())
        .context("control-plane address")?
        .connect_timeout(Duration::from_secs(10))
        .http2_keep_alive_interval(Duration::from_secs(20))
        .tls_config(tls)?)
}

/// What a sync session works on.
struct Parts<'a> {
    store: &'a ConfigStore,
    cache: Option<&'a Cache>,
    telemetry: &'a Telemetry,
    quotas: &'a Quotas,
    prober: &'a Arc<Prober>,
}

async fn session(
    options: &SyncOptions,
    parts: Parts<'_>,
    connected: &mut bool,
) -> anyhow::Result<()> {
    let Parts {
        store,
        cache,
        telemetry,
        quotas,
        prober,
    } = parts;
    let channel = endpoint(options)?
        .connect()
        .await
        .with_context(|| format!("connecting to {}", options.endpoint))?;
    let (tx, rx) = mpsc::channel(16);
    let from = store.current().revision;
    let hello = Hello {
        node_id: options.node_id.clone(),
        hostname: options.hostname.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        gateway_id: store.current().gateway_id().unwrap_or_default().to_string(),
        last_applied_revision: from,
        accepts_chunks: true,
    };
    send(&tx, node_message::Message::Hello(hello)).await?;
    let mut inbound = DataPlaneSyncClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .stream(ReceiverStream::new(rx))
        .await
        .context("opening the sync stream")?
        .into_inner();
    *connected = true;
    tracing::info!(
        endpoint = options.endpoint,
        revision = from,
        "connected to the control plane"
    );
    let mut status = tokio::time::interval(STATUS_EVERY);
    let mut events = tokio::time::interval(EVENTS_EVERY);
    let mut chunks = Chunks::default();
    let mut usage = tokio::time::interval(QUOTA_USAGE_EVERY);
    usage.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = inbound.message() => {
                let Some(message) = message.context("sync stream")? else { return Ok(()) };
                match message.message {
                    Some(server_message::Message::Update(update)) => match chunks.add(update) {
                        Ok(Some(update)) => apply(update, store, cache, &tx).await?,
                        Ok(None) => {}
                        Err(nack) => send(&tx, node_message::Message::Nack(nack)).await?,
                    },
                    Some(server_message::Message::QuotaShares(shares)) => quotas.apply(&shares),
                    Some(server_message::Message::Probe(request)) => {
                        // Run beside the stream: updates keep flowing
                        // while the probe dials (it has its own deadline).
                        let (prober, tx) = (prober.clone(), tx.clone());
                        tokio::spawn(async move {
                            let result = prober.run(request).await;
                            let _ = send(&tx, node_message::Message::ProbeResult(result)).await;
                        });
                    }
                    None => {}
                }
            }
            _ = usage.tick() => {
                let (uses, period) = quotas.usage();
                if !uses.is_empty() {
                    let period_ms = u32::try_from(period.as_millis()).unwrap_or(u32::MAX);
                    send(&tx, node_message::Message::QuotaUsage(QuotaUsage { uses, period_ms })).await?;
                }
            }
            _ = status.tick() => {
                let report = telemetry.status(store.current().revision);
                send(&tx, node_message::Message::Status(report)).await?;
            }
            _ = events.tick() => {
                send_events(&tx, telemetry).await?;
                // New errors are reported within one tick, not one status period.
                if telemetry.take_errors_changed() {
                    let report = telemetry.status(store.current().revision);
                    send(&tx, node_message::Message::Status(report)).await?;
                }
            }
            () = telemetry.wake.notified() => send_events(&tx, telemetry).await?,
        }
    }
}

/// The most chunks one snapshot may come in (the server cuts them at
/// 1 MiB): a stream that never ends one is refused, not buffered.
const MAX_CHUNKS: u32 = 4096;

/// A snapshot arriving in chunks: they are kept until the last one, then
/// applied as one snapshot (atomically, and answered once).
#[derive(Default)]
struct Chunks {
    /// The chunks so far, as one update.
    started: Option<ConfigUpdate>,
}

impl Chunks {
    /// Takes one message of an update: the whole update once it is
    /// complete, None while chunks are missing, or the NACK for a chunk
    /// that does not continue the snapshot being assembled (which is then
    /// dropped).
    fn add(&mut self, mut update: ConfigUpdate) -> Result<Option<ConfigUpdate>, Nack> {
        let Some(mut started) = self.started.take() else {
            if update.chunk != 0 {
                return Err(refuse(&update, "a snapshot chunk without its first chunk"));
            }
            if update.snapshot && update.more_chunks {
                self.started = Some(update);
                return Ok(None);
            }
            return Ok(Some(update));
        };
        let expected = started.chunk.saturating_add(1);
        if !update.snapshot
            || update.nonce != started.nonce
            || update.revision != started.revision
            || update.chunk != expected
        {
            return Err(refuse(
                &update,
                &format!(
                    "chunk {} of revision {} does not continue the snapshot of revision {} (chunk {expected} expected)",
                    update.chunk, update.revision, started.revision
                ),
            ));
        }
        if expected >= MAX_CHUNKS {
            return Err(refuse(
                &update,
                &format!("a snapshot in more than {MAX_CHUNKS} chunks"),
            ));
        }
        started.upserted.append(&mut update.upserted);
        started.chunk = expected;
        if update.more_chunks {
            self.started = Some(started);
            return Ok(None);
        }
        started.more_chunks = false;
        Ok(Some(started))
    }
}

/// The NACK of an update that cannot be assembled.
fn refuse(update: &ConfigUpdate, why: &str) -> Nack {
    tracing::warn!(
        revision = update.revision,
        reason = why,
        "rejected a config update"
    );
    Nack {
        nonce: update.nonce.clone(),
        revision: update.revision,
        error_detail: why.to_string(),
    }
}

async fn apply(
    update: ConfigUpdate,
    store: &ConfigStore,
    cache: Option<&Cache>,
    tx: &mpsc::Sender<NodeMessage>,
) -> anyhow::Result<()> {
    let current = store.current();
    match current.apply(&update) {
        Ok(next) => {
            if let Some(cache) = cache
                && let Err(e) = cache.save(&next)
            {
                tracing::warn!(error = format!("{e:#}"), "could not write the config cache");
            }
            store.replace(next);
            tracing::info!(
                revision = update.revision,
                snapshot = update.snapshot,
                upserted = update.upserted.len(),
                removed = update.removed.len(),
                "applied {}",
                if update.snapshot { "snapshot" } else { "delta" }
            );
            let ack = Ack {
                nonce: update.nonce,
                revision: update.revision,
            };
            send(tx, node_message::Message::Ack(ack)).await
        }
        Err(reason) => {
            tracing::warn!(
                revision = update.revision,
                reason,
                "rejected a config update"
            );
            let nack = Nack {
                nonce: update.nonce,
                revision: update.revision,
                error_detail: reason,
            };
            send(tx, node_message::Message::Nack(nack)).await
        }
    }
}

async fn send_events(tx: &mpsc::Sender<NodeMessage>, telemetry: &Telemetry) -> anyhow::Result<()> {
    let events = telemetry.take_events();
    if events.is_empty() {
        return Ok(());
    }
    send(
        tx,
        node_message::Message::Events(DataPlaneEvents { events }),
    )
    .await
}

async fn send(
    tx: &mpsc::Sender<NodeMessage>,
    message: node_message::Message,
) -> anyhow::Result<()> {
    tx.send(NodeMessage {
        message: Some(message),
    })
    .await
    .map_err(|_| anyhow::anyhow!("sync stream closed"))
}

#[cfg(test)]
mod tests {
    use sluice_proto::admin::v1::Entity;

    use super::*;

    fn chunk(nonce: &str, chunk: u32, more_chunks: bool, id: &str) -> ConfigUpdate {
        ConfigUpdate {
            revision: 7,
            nonce: nonce.into(),
            snapshot: true,
            upserted: vec![Entity {
                id: id.into(),
                ..Default::default()
            }],
            chunk,
            more_chunks,
            ..Default::default()
        }
    }

    #[test]
    fn chunks_are_applied_together_when_the_last_arrives() {
        let mut chunks = Chunks::default();
        assert_eq!(chunks.add(chunk("1", 0, true, "a")), Ok(None));
        assert_eq!(chunks.add(chunk("1", 1, true, "b")), Ok(None));
        let whole = chunks.add(chunk("1", 2, false, "c")).unwrap().unwrap();
        let ids: Vec<&str> = whole.upserted.iter().map(|e| e.id.as_str()).collect();
        assert_eq!((ids, whole.nonce.as_str()), (vec!["a", "b", "c"], "1"));
        // An update in one message passes straight through.
        assert_eq!(
            chunks.add(chunk("2", 0, false, "d")),
            Ok(Some(chunk("2", 0, false, "d")))
        );
    }

    #[test]
    fn a_chunk_out_of_place_is_refused() {
        let mut chunks = Chunks::default();
        assert!(chunks.add(chunk("1", 1, false, "a")).is_err());
        assert_eq!(chunks.add(chunk("1", 0, true, "a")), Ok(None));
        let nack = chunks.add(chunk("1", 2, false, "c")).unwrap_err();
        assert_eq!(nack.nonce, "1");
        // What was assembled is dropped: a fresh snapshot starts over.
        assert_eq!(chunks.add(chunk("2", 0, true, "a")), Ok(None));
        assert!(chunks.add(chunk("2", 1, false, "b")).unwrap().is_some());
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let mut b = Backoff { attempt: 0 };
        let first = b.next();
        assert!(first >= BACKOFF_MIN / 2 && first <= BACKOFF_MIN);
        for _ in 0..40 {
            let d = b.next();
            assert!(d <= BACKOFF_MAX && d >= BACKOFF_MIN / 2);
        }
        assert!(b.next() >= BACKOFF_MAX / 2);
    }
}
