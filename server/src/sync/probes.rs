//! Live probes on behalf of the Diagnose RPC: a request is sent down the
//! sync streams of a gateway's connected nodes and their results are
//! gathered within a deadline. Each stream registers here while it runs;
//! a gateway runs one diagnosis's probes at a time and at most one per
//! [`MIN_INTERVAL`], so probing cannot be turned into load on the nodes
//! or the backends.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use sluice_proto::dataplane::v1::{ProbeRequest, ProbeResult};
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;

/// The least time between two probes of one gateway.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The most nodes one diagnosis probes.
pub const MAX_NODES: usize = 16;
/// Probe requests buffered towards one stream.
const BUFFER: usize = 2;

type NodeKey = (String, String);

/// A stream's way to receive probe requests.
struct Attached {
    generation: u64,
    requests: mpsc::Sender<ProbeRequest>,
}

#[derive(Default)]
struct State {
    streams: HashMap<NodeKey, Attached>,
    /// Results awaited, by probe id, with the node asked.
    pending: HashMap<String, (NodeKey, oneshot::Sender<ProbeResult>)>,
    /// When each gateway was last probed.
    last: HashMap<String, Instant>,
    /// Gateways with a probe under way.
    running: std::collections::HashSet<String>,
}

/// Ends a gateway's probe when dropped (answered, timed out, or the
/// caller went away): its pending results are forgotten.
struct Running<'a> {
    probes: &'a Probes,
    gateway: String,
    ids: Vec<String>,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut state = self.probes.state();
        state.running.remove(&self.gateway);
        for id in &self.ids {
            state.pending.remove(id);
        }
    }
}

/// What one node answered.
#[derive(Debug)]
pub enum Answer {
    /// Its result.
    Done(ProbeResult),
    /// Nothing within the deadline.
    Timeout,
    /// It has no open stream.
    NotConnected,
}

/// The probe hub shared by the sync sessions and the admin API.
#[derive(Clone, Default)]
pub struct Probes {
    state: Arc<Mutex<State>>,
}

impl Probes {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a node's stream; its session forwards what arrives.
    pub fn attach(
        &self,
        gateway: &str,
        node: &str,
        generation: u64,
    ) -> mpsc::Receiver<ProbeRequest> {
        let (requests, rx) = mpsc::channel(BUFFER);
        self.state().streams.insert(
            (gateway.into(), node.into()),
            Attached {
                generation,
                requests,
            },
        );
        rx
    }

    /// Forgets a stream (unless a newer one of the node replaced it).
    pub fn detach(&self, gateway: &str, node: &str, generation: u64) {
        let mut state = self.state();
        let key = (gateway.to_string(), node.to_string());
        if state
            .streams
            .get(&key)
            .is_some_and(|a| a.generation == generation)
        {
            state.streams.remove(&key);
        }
    }

    /// A node's result arrived; unknown or late ones, and those of a
    /// probe another node was asked, are dropped.
    pub fn answer(&self, gateway: &str, node: &str, result: ProbeResult) {
        let mut state = self.state();
        let asked = state
            .pending
            .get(&result.probe_id)
            .is_some_and(|(key, _)| key.0 == gateway && key.1 == node);
        if asked && let Some((_, waiter)) = state.pending.remove(&result.probe_id) {
            let _ = waiter.send(result);
        }
    }

    /// Sends `request` to each of `nodes` and waits up to `wait` for
    /// their results, in the order of `nodes`. RESOURCE_EXHAUSTED when the
    /// gateway was probed less than [`MIN_INTERVAL`] ago.
    pub async fn ask(
        &self,
        gateway: &str,
        nodes: &[String],
        request: ProbeRequest,
        wait: Duration,
    ) -> Result<Vec<(String, Answer)>, ApiError> {
        let mut waiting = Vec::new();
        let mut running = Running {
            probes: self,
            gateway: gateway.to_string(),
            ids: Vec::new(),
        };
        {
            let mut state = self.state();
            let now = Instant::now();
            if state.running.contains(gateway) {
                // Not ours to end: the guard must not clear it.
                running.gateway.clear();
                return Err(ApiError::ResourceExhausted(format!(
                    "gateway {gateway} is being probed by another diagnosis; try again"
                )));
            }
            if let Some(at) = state.last.get(gateway)
                && now.duration_since(*at) < MIN_INTERVAL
            {
                return Err(ApiError::ResourceExhausted(format!(
                    "gateway {gateway} was probed less than {MIN_INTERVAL:?} ago; try again"
                )));
            }
            state.last.insert(gateway.to_string(), now);
            state.running.insert(gateway.to_string());
            for node in nodes.iter().take(MAX_NODES) {
                let key = (gateway.to_string(), node.clone());
                let Some(sender) = state.streams.get(&key).map(|a| a.requests.clone()) else {
                    waiting.push((node.clone(), None));
                    continue;
                };
                let id = uuid::Uuid::new_v4().to_string();
                let (tx, rx) = oneshot::channel();
                let sent = sender.try_send(ProbeRequest {
                    probe_id: id.clone(),
                    ..request.clone()
                });
                if sent.is_ok() {
                    state.pending.insert(id.clone(), (key, tx));
                    running.ids.push(id.clone());
                    waiting.push((node.clone(), Some((id, rx))));
                } else {
                    waiting.push((node.clone(), None));
                }
            }
        }
        let deadline = tokio::time::Instant::now() + wait;
        let mut answers = Vec::new();
        for (node, waiter) in waiting {
            let answer = match waiter {
                None => Answer::NotConnected,
                Some((id, rx)) => match tokio::time::timeout_at(deadline, rx).await {
                    Ok(Ok(result)) => Answer::Done(result),
                    _ => {
                        self.state().pending.remove(&id);
                        Answer::Timeout
                    }
                },
            };
            answers.push((node, answer));
        }
        Ok(answers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn results_are_gathered_and_silent_or_absent_nodes_named() {
        let probes = Probes::default();
        let mut a = probes.attach("g", "a", 1);
        let _b = probes.attach("g", "b", 1);
        let answering = probes.clone();
        tokio::spawn(async move {
            let request = a.recv().await.unwrap();
            // Another node cannot answer for it.
            answering.answer(
                "g",
                "b",
                ProbeResult {
                    probe_id: request.probe_id.clone(),
                    revision: 99,
                    ..Default::default()
                },
            );
            answering.answer(
                "g",
                "a",
                ProbeResult {
                    probe_id: request.probe_id,
                    revision: 7,
                    ..Default::default()
                },
            );
        });
        let nodes = ["a".to_string(), "b".to_string(), "c".to_string()];
        let answers = probes
            .ask(
                "g",
                &nodes,
                ProbeRequest::default(),
                Duration::from_millis(300),
            )
            .await
            .unwrap();
        assert!(matches!(&answers[0].1, Answer::Done(r) if r.revision == 7));
        assert!(matches!(answers[1].1, Answer::Timeout));
        assert!(matches!(answers[2].1, Answer::NotConnected));
        assert!(probes.state().pending.is_empty());
        // Too soon for the same gateway; another gateway is fine.
        let again = probes
            .ask(
                "g",
                &nodes,
                ProbeRequest::default(),
                Duration::from_millis(10),
            )
            .await;
        assert!(matches!(again, Err(ApiError::ResourceExhausted(_))));
        assert!(
            probes
                .ask("h", &[], ProbeRequest::default(), Duration::ZERO)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn one_probe_per_gateway_at_a_time() {
        let probes = Probes::default();
        let mut silent = probes.attach("g", "a", 1);
        let first = {
            let probes = probes.clone();
            tokio::spawn(async move {
                probes
                    .ask(
                        "g",
                        &["a".to_string()],
                        ProbeRequest::default(),
                        Duration::from_millis(300),
                    )
                    .await
            })
        };
        // The first has sent its request: a second must not run beside it.
        let _ = silent.recv().await;
        let second = probes
            .ask(
                "g",
                &["a".to_string()],
                ProbeRequest::default(),
                Duration::ZERO,
            )
            .await;
        assert!(
            matches!(second, Err(ApiError::ResourceExhausted(m)) if m.contains("another diagnosis"))
        );
        assert!(matches!(
            first.await.unwrap().unwrap()[0].1,
            Answer::Timeout
        ));
        // Done: nothing left running or pending.
        let state = probes.state();
        assert!(state.running.is_empty() && state.pending.is_empty());
    }

    #[test]
    fn a_replaced_stream_is_not_detached_by_the_old_one() {
        let probes = Probes::default();
        let _old = probes.attach("g", "a", 1);
        let _new = probes.attach("g", "a", 2);
        probes.detach("g", "a", 1);
        assert!(
            probes
                .state()
                .streams
                .contains_key(&("g".into(), "a".into()))
        );
        probes.detach("g", "a", 2);
        assert!(probes.state().streams.is_empty());
    }
}
