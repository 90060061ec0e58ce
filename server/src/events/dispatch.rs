//! The dispatcher: delivers queued events in order per hook, one attempt
//! in flight per hook, hooks independent of each other, retrying with
//! exponential backoff and jitter until delivered or dead. It runs beside
//! the admin API, so a slow receiver never slows a write.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use sluice_proto::admin::v1::{EventHandler, EventHook};

use super::{redact, sign};
use crate::store::{DueDelivery, Outcome, Store};

/// Retry settings.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts before an event is dead.
    pub max_attempts: u32,
    /// Delay after the first failure.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The delay after `attempts` failures: exponential, capped, with
    /// jitter (between half and all of it).
    pub fn delay(&self, attempts: u32) -> Duration {
        let cap = self
            .base
            .saturating_mul(1u32 << attempts.saturating_sub(1).min(20))
            .min(self.max);
        let half = cap / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// Delivers the outbox.
#[derive(Clone)]
pub struct Dispatcher {
    store: Store,
    policy: RetryPolicy,
    verifying: reqwest::Client,
    trusting: reqwest::Client,
    in_flight: Arc<Mutex<HashSet<String>>>,
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl Dispatcher {
    /// A dispatcher for `store`'s outbox.
    pub fn new(store: Store, policy: RetryPolicy) -> anyhow::Result<Self> {
        let client = |verify: bool| {
            reqwest::Client::builder()
                .user_agent(concat!("sluice-server/", env!("CARGO_PKG_VERSION")))
                .danger_accept_invalid_certs(!verify)
                .redirect(reqwest::redirect::Policy::none())
                .build()
        };
        Ok(Self {
            store,
            policy,
            verifying: client(true)?,
            trusting: client(false)?,
            in_flight: Arc::default(),
        })
    }

    /// Runs until the process ends.
    pub async fn run(self) {
        loop {
            if let Err(e) = self.start_due().await {
                tracing::warn!(error = %e, "event dispatcher: could not read the outbox");
            }
            let wait = match self.store.next_due().await {
                Ok(Some(at)) => Duration::from_millis((at - now_millis()).clamp(0, 60_000) as u64),
                _ => Duration::from_secs(60),
            };
            tokio::select! {
                () = self.store.events_queued() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn start_due(&self) -> Result<(), crate::error::ApiError> {
        for due in self.store.due_deliveries(now_millis()).await? {
            let fresh = self
                .in_flight
                .lock()
                .map(|mut f| f.insert(due.hook_id.clone()))
                .unwrap_or(false);
            if fresh {
                let this = self.clone();
                tokio::spawn(async move {
                    let hook_id = due.hook_id.clone();
                    this.attempt(due).await;
                    if let Ok(mut f) = this.in_flight.lock() {
                        f.remove(&hook_id);
                    }
                    // The hook's next event (or this one's retry) may be due.
                    this.store.wake_dispatcher();
                });
            }
        }
        Ok(())
    }

    async fn attempt(&self, due: DueDelivery) {
        match self.store.still_due(&due.id, due.attempts).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                // Cannot tell: hold the hook back a while rather than ask
                // the database again at once.
                tracing::warn!(hook = due.hook_id, error = %e, "could not check an event delivery");
                tokio::time::sleep(self.policy.base).await;
                return;
            }
        }
        let result = match self.store.hook_for_delivery(&due.hook_id).await {
            Ok(Some(hook)) => self.deliver(&hook, &due).await,
            Ok(None) => Err("the hook no longer exists".to_string()),
            Err(e) => Err(format!("could not load the hook: {e}")),
        };
        let attempts = due.attempts + 1;
        let outcome = match result {
            Ok(()) => Outcome::Delivered,
            Err(error) if attempts >= self.policy.max_attempts => {
                tracing::warn!(
                    hook = due.hook_id,
                    event = due.event_id,
                    attempts,
                    error,
                    "event delivery is dead"
                );
                Outcome::Dead { error }
            }
            Err(error) => {
                let delay = self.policy.delay(attempts);
                tracing::info!(
                    hook = due.hook_id,
                    event = due.event_id,
                    attempts,
                    error,
                    retry_in_ms = delay.as_millis() as u64,
                    "event delivery failed"
                );
                Outcome::Retry {
                    error,
                    at: now_millis() + delay.as_millis() as i64,
                }
            }
        };
        self.record(&due, outcome).await;
    }

    /// Records how an attempt ended, retrying with backoff until the
    /// database takes it. The hook stays in flight meanwhile, so a delivery
    /// whose outcome cannot be written (disk full, busy) is not sent again
    /// and again: it waits, and is sent again only if the server stops
    /// before the outcome is written (at least once).
    async fn record(&self, due: &DueDelivery, outcome: Outcome) {
        let mut failures = 0u32;
        while let Err(e) = self.store.record_attempt(&due.id, outcome.clone()).await {
            failures = failures.saturating_add(1);
            let delay = self.policy.delay(failures);
            tracing::warn!(
                hook = due.hook_id,
                event = due.event_id,
                error = %e,
                retry_in_ms = delay.as_millis() as u64,
                "could not record an event delivery; recording again later (the event is not resent)"
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn deliver(&self, hook: &EventHook, due: &DueDelivery) -> Result<(), String> {
        if hook.handler == EventHandler::Log as i32 {
            tracing::info!(target: "sluice_server::events", hook = due.hook_id, event_id = due.event_id, payload = %due.payload, "event");
            return Ok(());
        }
        let config = hook.config.clone().unwrap_or_default();
        let client = if config.ssl_verify.unwrap_or(true) {
            &self.verifying
        } else {
            &self.trusting
        };
        let body = due.payload.clone().into_bytes();
        let mut request = client
            .post(&config.url)
            .timeout(Duration::from_secs(u64::from(config.timeout.max(1))))
            .header("content-type", "application/json")
            .header("x-sluice-event-id", &due.event_id)
            .header("idempotency-key", &due.event_id);
        for (name, value) in &config.headers {
            request = request.header(name, value.value.as_str());
        }
        if let Some(secret) = config.secret.as_ref().filter(|s| !s.value.is_empty()) {
            request = request.header("x-sluice-signature", sign::signature(&secret.value, &body));
        }
        // Errors are stored, listed and logged: never with the URL's
        // credentials (reqwest's own message would repeat the whole URL).
        let shown = redact::url(&config.url);
        let response = request.body(body).send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "failed"
            };
            let e = e.without_url();
            let cause = std::error::Error::source(&e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            format!("POST {shown}: {kind}: {e}{cause}")
        })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("POST {shown}: HTTP {}", status.as_u16()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        let first = p.delay(1);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        let fourth = p.delay(4);
        assert!(fourth >= Duration::from_millis(400) && fourth <= Duration::from_millis(800));
        assert!(p.delay(30) <= Duration::from_secs(2));
    }
}
