//! The sync client: keeps one mTLS stream to the control plane, applies
//! what arrives (ACK when it applies, NACK with the reason when it does
//! not), caches it, reports status, and reconnects with jittered
//! exponential backoff, resuming from the applied revision.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use sluice_proto::dataplane::v1::{
    Ack, ConfigUpdate, DataPlaneEvents, Hello, Nack, NodeMessage, NodeStatus,
    data_plane_sync_client::DataPlaneSyncClient, node_message, server_message,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::{
    config::{ConfigStore, cache::Cache},
    telemetry::Telemetry,
};

/// First reconnect delay.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest reconnect delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often a node reports its status without being asked.
const STATUS_EVERY: Duration = Duration::from_secs(30);
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
) {
    let mut backoff = Backoff { attempt: 0 };
    loop {
        let mut connected = false;
        match session(&options, &store, cache.as_ref(), &telemetry, &mut connected).await {
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

async fn session(
    options: &SyncOptions,
    store: &ConfigStore,
    cache: Option<&Cache>,
    telemetry: &Telemetry,
    connected: &mut bool,
) -> anyhow::Result<()> {
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
    };
    send(&tx, node_message::Message::Hello(hello)).await?;
    let mut inbound = DataPlaneSyncClient::new(channel)
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
    loop {
        tokio::select! {
            message = inbound.message() => {
                let Some(message) = message.context("sync stream")? else { return Ok(()) };
                if let Some(server_message::Message::Update(update)) = message.message {
                    apply(update, store, cache, &tx).await?;
                }
            }
            _ = status.tick() => {
                let report = NodeStatus { applied_revision: store.current().revision, errors: telemetry.errors() };
                send(&tx, node_message::Message::Status(report)).await?;
            }
            _ = events.tick() => {
                send_events(&tx, telemetry).await?;
                // New errors are reported within one tick, not one status period.
                if telemetry.take_errors_changed() {
                    let report = NodeStatus { applied_revision: store.current().revision, errors: telemetry.errors() };
                    send(&tx, node_message::Message::Status(report)).await?;
                }
            }
            () = telemetry.wake.notified() => send_events(&tx, telemetry).await?,
        }
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
    use super::*;

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
