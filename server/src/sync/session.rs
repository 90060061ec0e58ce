//! One node's sync stream: the initial snapshot or resume delta, then one
//! update in flight at a time, ACK/NACK bookkeeping and revocation.

use std::{collections::BTreeMap, sync::Arc};

use sluice_proto::{
    admin::v1::{Entity, Kind},
    dataplane::v1::{
        ConfigUpdate, Hello, NodeMessage, Removed, ServerMessage, node_message, server_message,
    },
};
use tokio::sync::{broadcast, mpsc};
use tonic::{Status, Streaming};

use super::registry::Registry;
use crate::{
    events::Event,
    hub::{Change, ChangeOp},
    store::{NodeRecord, Store},
};

/// Who the stream belongs to.
pub struct Peer {
    /// The node's gateway (decided by its certificate).
    pub gateway_id: String,
    /// The data_plane_certificate it presented.
    pub certificate_id: String,
}

/// An update sent and not yet answered.
struct InFlight {
    nonce: String,
    revision: i64,
}

/// The state of one stream.
pub struct Session {
    store: Store,
    registry: Registry,
    peer: Peer,
    hello: Hello,
    out: mpsc::Sender<Result<ServerMessage, Status>>,
    /// The newest revision the node ACKed (its last good one).
    acked: i64,
    /// The newest revision sent (or skipped as covered).
    sent: i64,
    in_flight: Option<InFlight>,
    /// Changes since `sent`, newest per entity.
    pending: BTreeMap<String, Arc<Change>>,
    /// The next update must be read from the log from `acked` (after a NACK).
    from_log: bool,
    /// The next update must be a snapshot (the stream lagged).
    need_snapshot: bool,
    nonces: u64,
    /// Data-plane events for the emitter task.
    events: mpsc::UnboundedSender<Event>,
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
        peer: Peer,
        hello: Hello,
        out: mpsc::Sender<Result<ServerMessage, Status>>,
    ) -> Self {
        let acked = hello.last_applied_revision.max(0);
        let (events, mut queue) = mpsc::unbounded_channel::<Event>();
        let emitter = store.clone();
        let gateway = peer.gateway_id.clone();
        tokio::spawn(async move {
            while let Some(event) = queue.recv().await {
                if let Err(e) = emitter.emit(&gateway, event).await {
                    tracing::warn!(error = %e, "could not queue a data-plane event");
                }
            }
        });
        Self {
            store,
            registry,
            peer,
            hello,
            out,
            acked,
            sent: acked,
            in_flight: None,
            pending: BTreeMap::new(),
            from_log: false,
            need_snapshot: false,
            nonces: 0,
            events,
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
            applied_revision: self.acked,
            ..Default::default()
        };
        let generation = match self.registry.connected(record).await {
            Ok(g) => g,
            Err(e) => {
                let _ = self.out.send(Err(e.into())).await;
                return;
            }
        };
        tracing::info!(gateway, node, revision = self.acked, "data plane connected");
        self.emit("node_connected", "", serde_json::json!({"hostname": self.hello.hostname, "version": self.hello.version, "revision": self.acked}));
        let end = match self.initial().await {
            Ok(()) => self.serve(&mut inbound, &mut feed).await,
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
        self.registry.disconnected(&gateway, &node, generation);
        self.emit(
            "node_disconnected",
            "",
            serde_json::json!({"applied_revision": self.acked}),
        );
        tracing::info!(gateway, node, "data plane disconnected");
    }

    /// The first update: a snapshot for a new node or one the log cannot
    /// bring forward, else the changes since its revision.
    async fn initial(&mut self) -> Result<(), Status> {
        if self.acked == 0 {
            return self.send_snapshot().await;
        }
        match self
            .store
            .changes_since(&self.peer.gateway_id, self.acked)
            .await?
        {
            Some(delta) if delta.revision > self.acked => {
                let removed = delta.removed.into_iter().collect();
                self.send_delta(delta.revision, delta.upserted, removed)
                    .await
            }
            // Up to date, unless the node is ahead of this store (say, a
            // restored backup): then it starts over from a snapshot.
            Some(_) if self.acked <= self.store.latest_revision(&self.peer.gateway_id).await? => {
                Ok(())
            }
            _ => self.send_snapshot().await,
        }
    }

    async fn serve(
        &mut self,
        inbound: &mut Streaming<NodeMessage>,
        feed: &mut broadcast::Receiver<Arc<Change>>,
    ) -> End {
        loop {
            tokio::select! {
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
                        self.need_snapshot = true;
                    }
                    Err(broadcast::error::RecvError::Closed) => return End::Closed,
                },
            }
            if self.in_flight.is_none()
                && let Err(status) = self.send_next().await
            {
                return End::Refused(status);
            }
        }
    }

    fn on_node_message(&mut self, message: NodeMessage) -> Result<(), Status> {
        let gateway = self.peer.gateway_id.clone();
        let node = self.hello.node_id.clone();
        match message.message {
            Some(node_message::Message::Ack(ack)) => {
                if let Some(f) = self.in_flight.take_if(|f| f.nonce == ack.nonce) {
                    self.acked = f.revision;
                    self.registry.acked(&gateway, &node, f.revision);
                }
            }
            Some(node_message::Message::Nack(nack)) => {
                if let Some(f) = self.in_flight.take_if(|f| f.nonce == nack.nonce) {
                    tracing::warn!(
                        gateway,
                        node,
                        revision = f.revision,
                        reason = nack.error_detail,
                        "data plane rejected an update"
                    );
                    self.registry
                        .rejected(&gateway, &node, f.revision, &nack.error_detail);
                    self.emit(
                        "config_rejected",
                        &f.revision.to_string(),
                        serde_json::json!({"revision": f.revision, "reason": nack.error_detail}),
                    );
                    // Not resent: the next update waits for a newer revision
                    // and is then rebuilt from the node's last good one.
                    self.from_log = true;
                    self.pending.clear();
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
                    });
                    self.emit(&e.event, &e.key, details);
                }
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
            return Err(Status::permission_denied(format!(
                "data_plane_certificate {id} was revoked (deleted); this node is disconnected"
            )));
        }
        if change.revision <= self.sent || !change.kind().is_data_plane_config() {
            return Ok(());
        }
        self.pending.insert(change.entity_id().to_string(), change);
        Ok(())
    }

    /// Sends what has accumulated, if anything, as one update.
    async fn send_next(&mut self) -> Result<(), Status> {
        if self.need_snapshot {
            self.need_snapshot = false;
            self.pending.clear();
            self.from_log = false;
            return self.send_snapshot().await;
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.from_log {
            self.from_log = false;
            self.pending.clear();
            return match self
                .store
                .changes_since(&self.peer.gateway_id, self.acked)
                .await?
            {
                Some(delta) => {
                    let removed = delta.removed.into_iter().collect();
                    self.send_delta(delta.revision, delta.upserted, removed)
                        .await
                }
                None => self.send_snapshot().await,
            };
        }
        let mut changes: Vec<Arc<Change>> =
            std::mem::take(&mut self.pending).into_values().collect();
        changes.sort_by_key(|c| c.revision);
        let revision = changes.last().map_or(self.sent, |c| c.revision);
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

    async fn send_snapshot(&mut self) -> Result<(), Status> {
        let (revision, entities) = self.store.snapshot(&self.peer.gateway_id).await?;
        let update = ConfigUpdate {
            revision,
            nonce: self.next_nonce(),
            snapshot: true,
            base_revision: 0,
            upserted: entities,
            removed: Vec::new(),
        };
        self.send(update).await
    }

    async fn send_delta(
        &mut self,
        revision: i64,
        upserted: Vec<Entity>,
        removed: Vec<(Kind, String)>,
    ) -> Result<(), Status> {
        let update = ConfigUpdate {
            revision,
            nonce: self.next_nonce(),
            snapshot: false,
            base_revision: self.acked,
            upserted,
            removed: removed
                .into_iter()
                .map(|(kind, id)| Removed {
                    kind: kind as i32,
                    id,
                })
                .collect(),
        };
        self.send(update).await
    }

    async fn send(&mut self, update: ConfigUpdate) -> Result<(), Status> {
        self.sent = self.sent.max(update.revision);
        self.in_flight = Some(InFlight {
            nonce: update.nonce.clone(),
            revision: update.revision,
        });
        let message = ServerMessage {
            message: Some(server_message::Message::Update(update)),
        };
        self.out
            .send(Ok(message))
            .await
            .map_err(|_| Status::cancelled("the node went away"))
    }

    fn next_nonce(&mut self) -> String {
        self.nonces += 1;
        self.nonces.to_string()
    }

    /// Queues a data-plane event about this node for the hooks that listen,
    /// through the session's emitter task: in order, and without the
    /// stream waiting on the outbox.
    fn emit(&self, event: &str, key: &str, details: serde_json::Value) {
        let event = Event::dataplane(
            &self.peer.gateway_id,
            &self.hello.node_id,
            event,
            key,
            details,
        );
        let _ = self.events.send(event);
    }
}
