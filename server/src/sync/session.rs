//! One node's sync stream: its I/O (the store, the change feed, the
//! stream), node status and revocation. What to send when is decided by
//! the protocol's planner (`plan.rs`).

use std::sync::Arc;

use sluice_proto::{
    admin::v1::{Entity, Kind},
    dataplane::v1::{
        ConfigUpdate, Hello, NodeMessage, ProbeRequest, Removed, ServerMessage, node_message,
        server_message,
    },
};
use tokio::sync::{broadcast, mpsc};
use tonic::{Status, Streaming};

use super::{
    chunks,
    emitter::Emitter,
    plan::{FromLog, Log, Next, Plan},
    quotas::{Quotas, Sent},
    registry::{Ending, Registry, Stop},
};
use crate::{
    events::Event,
    hub::{Change, ChangeOp},
    store::{NodeRecord, Store},
};

/// How often a node's quota shares are recomputed (and sent if changed).
const SHARES_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Who the stream belongs to.
pub struct Peer {
    /// The node's gateway (decided by its certificate).
    pub gateway_id: String,
    /// The data_plane_certificate it presented.
    pub certificate_id: String,
}

/// The state of one stream.
pub struct Session {
    store: Store,
    registry: Registry,
    peer: Peer,
    hello: Hello,
    out: mpsc::Sender<Result<ServerMessage, Status>>,
    /// The protocol state: what was ACKed, sent, in flight and pending.
    plan: Plan,
    /// Data-plane events for the emitter task (bounded, drops counted).
    events: Emitter,
    /// Quota usage of every node, and the shares this node was sent.
    quotas: Quotas,
    sent_shares: Sent,
}

/// Why a stream ended.
enum End {
    /// The node closed it or the connection dropped.
    Closed,
    /// The server ends it with this status.
    Refused(Status),
}

impl Session {
    /// A session for a node that said hello.
    pub fn new(
        store: Store,
        registry: Registry,
        quotas: Quotas,
        peer: Peer,
        hello: Hello,
        out: mpsc::Sender<Result<ServerMessage, Status>>,
    ) -> Self {
        let plan = Plan::new(hello.last_applied_revision);
        let events = Emitter::spawn(store.clone(), &peer.gateway_id, &hello.node_id);
        Self {
            store,
            registry,
            peer,
            hello,
            out,
            plan,
            events,
            quotas,
            sent_shares: Sent::default(),
        }
    }

    /// Runs the stream until the node leaves or is refused.
    pub async fn run(mut self, mut inbound: Streaming<NodeMessage>) {
        let gateway = self.peer.gateway_id.clone();
        let node = self.hello.node_id.clone();
        // Subscribe before reading the store so no commit falls in between.
        let mut feed = self.store.changes(&gateway);
        let record = NodeRecord {
            id: node.clone(),
            gateway_id: gateway.clone(),
            hostname: self.hello.hostname.clone(),
            version: self.hello.version.clone(),
            certificate_id: self.peer.certificate_id.clone(),
            applied_revision: self.plan.acked(),
            ..Default::default()
        };
        let (generation, stop) = match self.registry.connected(record).await {
            Ok(connected) => connected,
            Err(e) => {
                let _ = self.out.send(Err(e.into())).await;
                return;
            }
        };
        let revision = self.plan.acked();
        self.quotas.join(&gateway, &node);
        tracing::info!(gateway, node, revision, "data plane connected");
        self.emit("node_connected", "", serde_json::json!({"hostname": self.hello.hostname, "version": self.hello.version, "revision": revision}));
        let mut probes = self.registry.probes.attach(&gateway, &node, generation);
        let end = match self.send_next().await {
            Ok(()) => {
                self.serve(&mut inbound, &mut feed, &stop, &mut probes)
                    .await
            }
            Err(status) => End::Refused(status),
        };
        if let End::Refused(status) = end {
            tracing::warn!(
                gateway,
                node,
                reason = status.message(),
                "data plane stream refused"
            );
            let _ = self.out.send(Err(status)).await;
        }
        self.registry.probes.detach(&gateway, &node, generation);
        self.registry.disconnected(&gateway, &node, generation);
        self.quotas.leave(&gateway, &node);
        self.emit(
            "node_disconnected",
            "",
            serde_json::json!({"applied_revision": self.plan.acked()}),
        );
        tracing::info!(gateway, node, "data plane disconnected");
    }

    async fn serve(
        &mut self,
        inbound: &mut Streaming<NodeMessage>,
        feed: &mut broadcast::Receiver<Arc<Change>>,
        stop: &Stop,
        probes: &mut mpsc::Receiver<ProbeRequest>,
    ) -> End {
        let mut shares = tokio::time::interval(SHARES_EVERY);
        shares.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                why = stop.ended() => return End::Refused(self.stopped(why)),
                Some(request) = probes.recv() => {
                    let message = ServerMessage { message: Some(server_message::Message::Probe(request)) };
                    if self.out.send(Ok(message)).await.is_err() {
                        return End::Closed;
                    }
                }
                _ = shares.tick() => {
                    if let Err(status) = self.send_shares().await {
                        return End::Refused(status);
                    }
                }
                message = inbound.message() => match message {
                    Ok(Some(m)) => {
                        if let Err(status) = self.on_node_message(m) {
                            return End::Refused(status);
                        }
                    }
                    Ok(None) | Err(_) => return End::Closed,
                },
                change = feed.recv() => match change {
                    Ok(change) => {
                        if let Err(status) = self.on_change(change) {
                            return End::Refused(status);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(gateway = self.peer.gateway_id, node = self.hello.node_id, missed, "node fell behind; it gets a snapshot");
                        self.plan.on_lagged();
                    }
                    Err(broadcast::error::RecvError::Closed) => return End::Closed,
                },
            }
            // Ended while this turn ran: nothing more is sent.
            if let Some(why) = stop.why() {
                return End::Refused(self.stopped(why));
            }
            if let Err(status) = self.send_next().await {
                return End::Refused(status);
            }
        }
    }

    fn on_node_message(&mut self, message: NodeMessage) -> Result<(), Status> {
        let gateway = self.peer.gateway_id.clone();
        let node = self.hello.node_id.clone();
        match message.message {
            Some(node_message::Message::Ack(ack)) => {
                if let Some(revision) = self.plan.on_ack(&ack.nonce) {
                    self.registry.acked(&gateway, &node, revision);
                }
            }
            Some(node_message::Message::Nack(nack)) => {
                if let Some(revision) = self.plan.on_nack(&nack.nonce) {
                    tracing::warn!(
                        gateway,
                        node,
                        revision,
                        reason = nack.error_detail,
                        "data plane rejected an update"
                    );
                    self.registry
                        .rejected(&gateway, &node, revision, &nack.error_detail);
                    self.emit(
                        "config_rejected",
                        &revision.to_string(),
                        serde_json::json!({"revision": revision, "reason": nack.error_detail}),
                    );
                }
            }
            Some(node_message::Message::Status(status)) => {
                self.registry.status(&gateway, &node, status)
            }
            Some(node_message::Message::Events(batch)) => {
                for e in batch.events.into_iter().take(100) {
                    if !crate::validate::spec::DATAPLANE_EVENTS.contains(&e.event.as_str()) {
                        continue;
                    }
                    let details = serde_json::json!({
                        "key": e.key, "count": e.count, "hop": e.hop,
                        "entity_id": e.entity_id, "message": e.message,
                        "shadow": e.shadow,
                    });
                    self.emit(&e.event, &e.key, details);
                }
            }
            Some(node_message::Message::QuotaUsage(usage)) => {
                self.quotas.report(&gateway, &node, usage)
            }
            Some(node_message::Message::ProbeResult(mut result)) => {
                if let Some(status) = result.status.take() {
                    self.registry.status(&gateway, &node, status);
                }
                self.registry.probes.answer(&gateway, &node, result);
            }
            Some(node_message::Message::Hello(_)) => {
                return Err(Status::invalid_argument(
                    "hello is only valid as the first message",
                ));
            }
            None => {}
        }
        Ok(())
    }

    fn on_change(&mut self, change: Arc<Change>) -> Result<(), Status> {
        if let ChangeOp::Remove(Kind::DataPlaneCertificate, id) = &change.op
            && *id == self.peer.certificate_id
        {
            return Err(self.revoked());
        }
        self.plan.on_change(change);
        Ok(())
    }

    /// Sends the node the quota shares that changed, if any.
    async fn send_shares(&mut self) -> Result<(), Status> {
        let (shares, default) = self
            .quotas
            .shares(&self.peer.gateway_id, &self.hello.node_id);
        let Some(message) = self.sent_shares.changes(shares, default) else {
            return Ok(());
        };
        self.out
            .send(Ok(ServerMessage {
                message: Some(server_message::Message::QuotaShares(message)),
            }))
            .await
            .map_err(|_| Status::cancelled("the node went away"))
    }

    /// Sends what the plan says is next, if anything.
    async fn send_next(&mut self) -> Result<(), Status> {
        match self.plan.next() {
            Next::Wait => Ok(()),
            Next::Snapshot => self.send_snapshot().await,
            Next::Delta => {
                let (revision, changes) = self.plan.take_pending();
                let mut upserted = Vec::new();
                let mut removed = Vec::new();
                for change in changes {
                    match &change.op {
                        ChangeOp::Upsert(e) => upserted.push(e.as_ref().clone()),
                        ChangeOp::Remove(kind, id) => removed.push((*kind, id.clone())),
                    }
                }
                self.send_delta(revision, upserted, removed).await
            }
            Next::FromLog { since } => {
                let gateway = &self.peer.gateway_id;
                let delta = self.store.changes_since(gateway, since).await?;
                self.ensure_live().await?;
                let log = match &delta {
                    None => Log::Compacted,
                    Some(d) if d.revision > since => Log::Changes,
                    Some(_) => Log::Unchanged {
                        latest: self.store.latest_revision(gateway).await?,
                    },
                };
                match (self.plan.after_log(log), delta) {
                    (FromLog::Delta, Some(delta)) => {
                        let removed = delta.removed.into_iter().collect();
                        self.send_delta(delta.revision, delta.upserted, removed)
                            .await
                    }
                    (FromLog::Nothing, _) => Ok(()),
                    (FromLog::Snapshot | FromLog::Delta, _) => self.send_snapshot().await,
                }
            }
        }
    }

    async fn send_snapshot(&mut self) -> Result<(), Status> {
        self.plan.snapshot_taken();
        let (revision, entities) = self.store.snapshot(&self.peer.gateway_id).await?;
        self.ensure_live().await?;
        // One message for a node that cannot assemble chunks (as large as
        // it must be); chunks well under gRPC's 4 MiB for one that can.
        let limit = match self.hello.accepts_chunks {
            true => chunks::CHUNK_BYTES,
            false => usize::MAX,
        };
        let parts = chunks::split(entities, limit);
        let last = parts.len().saturating_sub(1);
        let nonce = self.plan.snapshot_sent(revision);
        for (i, upserted) in parts.into_iter().enumerate() {
            let update = ConfigUpdate {
                revision,
                nonce: nonce.clone(),
                snapshot: true,
                upserted,
                chunk: u32::try_from(i).unwrap_or(u32::MAX),
                more_chunks: i < last,
                ..Default::default()
            };
            self.transmit(update).await?;
        }
        Ok(())
    }

    /// Refuses the stream unless its certificate is still a live
    /// data_plane_certificate. Checked after reading every snapshot and
    /// every update read from the log (resume, after a NACK): those do not
    /// come from the change feed that carries revocations, which a lagged
    /// stream has lost and which misses one committed between the
    /// handshake and the subscription.
    async fn ensure_live(&self) -> Result<(), Status> {
        let Peer {
            gateway_id,
            certificate_id,
        } = &self.peer;
        if self
            .store
            .certificate_is_live(gateway_id, certificate_id)
            .await?
        {
            Ok(())
        } else {
            Err(self.revoked())
        }
    }

    /// How the stream ends once its certificate is revoked.
    fn revoked(&self) -> Status {
        Status::permission_denied(format!(
            "data_plane_certificate {} was revoked (deleted); this node is disconnected",
            self.peer.certificate_id
        ))
    }

    /// How the stream ends when the server ends it from outside.
    fn stopped(&self, why: Ending) -> Status {
        match why {
            Ending::Revoked => self.revoked(),
            Ending::Replaced => self.replaced(),
        }
    }

    /// How an older stream of a node id ends once a newer one connected.
    fn replaced(&self) -> Status {
        Status::aborted(format!(
            "node id {:?} opened another sync stream; only the newest stream of a node id \
             stays open (give each node its own id)",
            self.hello.node_id
        ))
    }

    async fn send_delta(
        &mut self,
        revision: i64,
        upserted: Vec<Entity>,
        removed: Vec<(Kind, String)>,
    ) -> Result<(), Status> {
        let update = ConfigUpdate {
            revision,
            snapshot: false,
            base_revision: self.plan.acked(),
            upserted,
            removed: removed
                .into_iter()
                .map(|(kind, id)| Removed {
                    kind: kind as i32,
                    id,
                })
                .collect(),
            ..Default::default()
        };
        self.send(update).await
    }

    /// Sends an update, in flight until the node answers its nonce.
    async fn send(&mut self, mut update: ConfigUpdate) -> Result<(), Status> {
        update.nonce = self.plan.sent(update.revision);
        self.transmit(update).await
    }

    /// Writes one message of an update to the stream.
    async fn transmit(&self, update: ConfigUpdate) -> Result<(), Status> {
        let message = ServerMessage {
            message: Some(server_message::Message::Update(update)),
        };
        self.out
            .send(Ok(message))
            .await
            .map_err(|_| Status::cancelled("the node went away"))
    }

    /// Queues a data-plane event about this node for the hooks that listen,
    /// through the session's emitter task: in order, and without the
    /// stream waiting on the outbox (dropped and counted when it is full).
    fn emit(&self, event: &str, key: &str, details: serde_json::Value) {
        let event = Event::dataplane(
            &self.peer.gateway_id,
            &self.hello.node_id,
            event,
            key,
            details,
        );
        self.events.send(event);
    }
}

#[cfg(test)]
mod tests;
