//! Live probes for the Diagnose RPC: the control plane asks a node, over
//! the sync stream, to walk a client's path as it runs here — resolve the
//! address (and SNI name) through this node's applied configuration,
//! connect to it as a client would, and dial the backend clusters (TCP,
//! TLS, SASL, ApiVersions, Metadata). Every step is timed out, the whole
//! probe has a deadline, one probe runs at a time, and no records are
//! ever sent (Metadata never creates topics).

mod backend;
mod listener;
mod wire;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use sluice_proto::dataplane::v1::{ProbeRequest, ProbeResult, ProbeStep};

use crate::node::Node;

/// The longest probe a control plane may ask for.
const MAX_DEADLINE: Duration = Duration::from_secs(30);
/// The deadline of a request that names none.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(8);
/// How long one network step (connect, handshake, one exchange) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(4);
/// The most backend clusters one probe dials.
const MAX_BACKENDS: usize = 8;
/// The most topics one probe looks for.
const MAX_TOPICS: usize = 4;
/// The most bootstrap servers of one backend a probe tries.
const MAX_SERVERS: usize = 3;

/// Runs probes on this node, one at a time.
pub struct Prober {
    node: Arc<Node>,
    busy: AtomicBool,
}

/// The steps of one probe, as they are taken.
#[derive(Default)]
pub(crate) struct Steps(Vec<ProbeStep>);

impl Steps {
    /// Records a step that started at `started`.
    pub(crate) fn record(
        &mut self,
        target: &str,
        entity_id: &str,
        step: &str,
        started: Instant,
        outcome: Result<String, String>,
    ) -> bool {
        let passed = outcome.is_ok();
        let (status, message) = match outcome {
            Ok(m) => ("pass", m),
            Err(m) => ("fail", m),
        };
        self.0.push(ProbeStep {
            target: target.into(),
            step: step.into(),
            status: status.into(),
            message: cut(message),
            elapsed_ms: u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX),
            entity_id: entity_id.into(),
        });
        passed
    }

    /// Records a step not taken, and why.
    pub(crate) fn skip(&mut self, target: &str, entity_id: &str, step: &str, why: &str) {
        self.0.push(ProbeStep {
            target: target.into(),
            step: step.into(),
            status: "skipped".into(),
            message: why.into(),
            elapsed_ms: 0,
            entity_id: entity_id.into(),
        });
    }
}

/// Messages are kept short: they travel in one status message.
fn cut(mut message: String) -> String {
    if message.len() > 1024 {
        let mut end = 1024;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

impl Prober {
    /// A prober for `node`.
    pub fn new(node: Arc<Node>) -> Arc<Prober> {
        Arc::new(Prober {
            node,
            busy: AtomicBool::new(false),
        })
    }

    /// Runs one probe within its deadline; a request that arrives while
    /// another runs is answered `busy` at once.
    pub async fn run(&self, request: ProbeRequest) -> ProbeResult {
        let config = self.node.config.current();
        let mut result = ProbeResult {
            probe_id: request.probe_id.clone(),
            revision: config.revision,
            ..Default::default()
        };
        if self.busy.swap(true, Ordering::AcqRel) {
            result.busy = true;
            return result;
        }
        // Free again however this ends (a panic included).
        struct Idle<'a>(&'a AtomicBool);
        impl Drop for Idle<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let idle = Idle(&self.busy);
        let deadline = match request.deadline_ms {
            0 => DEFAULT_DEADLINE,
            ms => Duration::from_millis(u64::from(ms)).min(MAX_DEADLINE),
        };
        let mut steps = Steps::default();
        let walk = async {
            if !request.address.is_empty() {
                listener::probe(&self.node, &config, &request, &mut steps).await;
            }
            let topics: Vec<String> = request.topics.iter().take(MAX_TOPICS).cloned().collect();
            for id in request.backend_cluster_ids.iter().take(MAX_BACKENDS) {
                backend::probe(&config, id, &topics, &mut steps).await;
            }
        };
        if tokio::time::timeout(deadline, walk).await.is_err() {
            steps.skip(
                "probe",
                "",
                "deadline",
                &format!("the probe's {deadline:?} deadline passed; later steps were not taken"),
            );
        }
        drop(idle);
        result.steps = steps.0;
        result.status = Some(
            self.node
                .telemetry
                .status(self.node.config.current().revision),
        );
        result
    }
}

#[cfg(test)]
mod tests;
