//! A session's data-plane events on their way to the outbox: one task per
//! stream queues them in order, so the stream never waits on the
//! database. The queue is bounded: a node that reports faster than the
//! outbox takes loses the excess, and the drops are counted and logged.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use tokio::sync::mpsc;

use crate::{events::Event, store::Store};

/// Events waiting for the outbox, per stream.
pub const QUEUE: usize = 1024;

/// Every how many drops another warning is logged (the first always is).
const WARN_EVERY: u64 = 1000;

/// The sending half, owned by a session.
pub struct Emitter {
    tx: mpsc::Sender<Event>,
    dropped: Arc<AtomicU64>,
    gateway_id: String,
    node_id: String,
}

impl Emitter {
    /// Starts the task that queues `node_id`'s events for the hooks of
    /// `gateway_id`; it ends when the emitter is dropped and the queue is
    /// drained.
    pub fn spawn(store: Store, gateway_id: &str, node_id: &str) -> Self {
        let (tx, mut rx) = mpsc::channel::<Event>(QUEUE);
        let gateway = gateway_id.to_string();
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                if let Err(e) = store.emit(&gateway, event).await {
                    tracing::warn!(error = %e, "could not queue a data-plane event");
                }
            }
        });
        Self {
            tx,
            dropped: Arc::default(),
            gateway_id: gateway_id.to_string(),
            node_id: node_id.to_string(),
        }
    }

    /// Queues an event, or drops and counts it when the queue is full.
    pub fn send(&self, event: Event) {
        match self.tx.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped == 1 || dropped.is_multiple_of(WARN_EVERY) {
                    tracing::warn!(
                        gateway = self.gateway_id,
                        node = self.node_id,
                        event = event.event,
                        dropped,
                        queue = QUEUE,
                        "data-plane events dropped: the node reports faster than the outbox takes them"
                    );
                }
            }
            // The task is gone only if the runtime is shutting down.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// How many events were dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Emitter {
    fn drop(&mut self) {
        let dropped = self.dropped();
        if dropped > 0 {
            tracing::warn!(
                gateway = self.gateway_id,
                node = self.node_id,
                dropped,
                "data-plane events dropped during this stream"
            );
        }
    }
}
