//! The service under the admin client: adds the bearer token, bounds each
//! call by the request timeout, retries calls that only read on
//! UNAVAILABLE with exponential backoff (never a create, update or
//! delete), answers "stopped" once StopProvider came, and remembers the
//! first time the server could not be reached so that later calls fail
//! at once with a short error instead of repeating the long one.

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use http::{HeaderValue, Request, Response, header::AUTHORIZATION};
use http_body_util::BodyExt;
use tokio::time::Instant;
use tonic::{Status, body::Body, codegen::StdError};
use tower::{Service, ServiceExt};

use super::Stop;

/// The calls that only read, retried on UNAVAILABLE (the last segment of
/// the gRPC path).
const IDEMPOTENT: [&str; 9] = [
    "GetEntity",
    "ListEntities",
    "Validate",
    "ListRevisions",
    "ListDataPlaneNodes",
    "ListEventSources",
    "ListEventDeliveries",
    // Changes nothing; its live probes send no records.
    "Diagnose",
    // grpc.health.v1.Health
    "Check",
];

/// Whether the call at this gRPC path may be sent again.
pub fn is_idempotent(path: &str) -> bool {
    IDEMPOTENT.contains(&path.rsplit('/').next().unwrap_or_default())
}

/// Retries: `attempts` in all, waiting `first`, then twice as long each
/// time up to `max` (and never past the request deadline).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Tries in all (1 = no retry).
    pub attempts: u32,
    /// The wait before the first retry.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            attempts: 4,
            first: Duration::from_millis(250),
            max: Duration::from_secs(2),
        }
    }
}

impl Backoff {
    /// The wait after try number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// What a guarded channel does.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The endpoint, for messages.
    pub endpoint: String,
    /// `Bearer <token>`.
    pub authorization: HeaderValue,
    /// The bound on one call, retries included.
    pub timeout: Duration,
    /// Retries of calls that only read.
    pub backoff: Backoff,
}

/// How long after a failed attempt other calls fail at once instead of
/// waiting on the same dead server (then it is tried again).
const FAIL_FAST: Duration = Duration::from_secs(5);

struct Shared {
    policy: Policy,
    stop: Stop,
    /// Why the server could not be reached, the first time, and when it
    /// last failed (calls within [`FAIL_FAST`] of it fail at once).
    unreachable: Mutex<Option<(String, Instant)>>,
}

/// The guarded channel (a tower service under the generated clients).
#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Guarded<S> {
    /// Guards `inner` (a tonic `Channel`, or a stand-in in tests).
    pub fn new(inner: S, policy: Policy, stop: Stop) -> Self {
        Guarded {
            inner,
            shared: Arc::new(Shared {
                policy,
                stop,
                unreachable: Mutex::default(),
            }),
        }
    }

    /// The endpoint it talks to.
    pub fn endpoint(&self) -> &str {
        &self.shared.policy.endpoint
    }
}

/// The error chain of a transport failure, on one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text = format!("{text}: {next}");
        }
        source = e.source();
    }
    text
}

/// A call's outcome worth retrying.
enum Failure {
    /// The server (or a proxy) answered UNAVAILABLE.
    Answered(Response<Body>),
    /// No answer: connection refused, reset, TLS failure...
    Transport(String),
}

/// Whether a buffered answer says UNAVAILABLE (gRPC status 14, in the
/// headers of a trailers-only answer or in the trailers; or a proxy's
/// 502/503/504).
fn says_unavailable(parts: &http::response::Parts, trailers: Option<&http::HeaderMap>) -> bool {
    let code14 = |h: &http::HeaderMap| h.get("grpc-status").is_some_and(|v| v == "14");
    matches!(parts.status.as_u16(), 502..=504)
        || code14(&parts.headers)
        || trailers.is_some_and(code14)
}

impl Shared {
    fn stopped(&self, method: &str) -> Status {
        Status::cancelled(format!(
            "stopped: Terraform stopped the provider (interrupt) during {method}; \
             a change in flight may or may not have been applied, refresh to see"
        ))
    }

    /// Whether the server failed to answer within the last
    /// [`FAIL_FAST`] (a restarted server is tried again after it).
    fn recently_unreachable(&self) -> bool {
        self.unreachable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() < FAIL_FAST)
    }

    /// An answer came: the server is reachable again.
    fn reached(&self) {
        let mut memory = self.unreachable.lock().unwrap_or_else(|e| e.into_inner());
        if memory.is_some() {
            *memory = None;
        }
    }

    /// The error for a transport failure: the long one the first time,
    /// a short one after.
    fn unreachable(&self, detail: String) -> Status {
        let endpoint = &self.policy.endpoint;
        let mut first = self.unreachable.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, at)) = first.as_mut() {
            *at = Instant::now();
            return self.short(endpoint);
        }
        *first = Some((detail.clone(), Instant::now()));
        Status::unavailable(format!(
            "cannot reach the Sluice admin API at {endpoint}: {detail}. Check the provider's \
             endpoint (or SLUICE_ENDPOINT) and that sluice-server runs there and answers."
        ))
    }

    fn short(&self, endpoint: &str) -> Status {
        Status::unavailable(format!(
            "the Sluice admin API at {endpoint} is unreachable (reported above)"
        ))
    }

    async fn call<S>(
        self: Arc<Self>,
        inner: S,
        request: Request<Body>,
    ) -> Result<Response<Body>, Status>
    where
        S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
        S::Future: Send,
        S::Error: Into<StdError>,
    {
        let path = request.uri().path().to_string();
        let method = path.rsplit('/').next().unwrap_or_default().to_string();
        if self.stop.is_stopped() {
            return Err(self.stopped(&method));
        }
        if self.recently_unreachable() {
            return Err(self.short(&self.policy.endpoint));
        }
        let deadline = Instant::now() + self.policy.timeout;
        let (mut parts, body) = request.into_parts();
        parts
            .headers
            .insert(AUTHORIZATION, self.policy.authorization.clone());
        // Buffered so that it can be sent again (admin calls are unary).
        let body = body
            .collect()
            .await
            .map_err(|e| Status::internal(format!("encoding {method}: {e}")))?
            .to_bytes();
        let retries = is_idempotent(&path);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = Request::from_parts(
                parts.clone(),
                Body::new(http_body_util::Full::new(body.clone())),
            );
            let sent = tokio::time::timeout_at(deadline, once(inner.clone(), request));
            let outcome = tokio::select! {
                biased;
                () = self.stop.stopped() => return Err(self.stopped(&method)),
                outcome = sent => outcome,
            };
            let failure = match outcome {
                Err(_) => {
                    let outcome = match retries {
                        true => "",
                        false => {
                            "; the change may or may not have been applied: run `terraform plan` (or import) to see"
                        }
                    };
                    return Err(Status::deadline_exceeded(format!(
                        "no answer from the Sluice admin API at {} to {method} within {:?} \
                         (request_timeout or SLUICE_REQUEST_TIMEOUT){outcome}",
                        self.policy.endpoint, self.policy.timeout
                    )));
                }
                Ok(Ok(Ok(answer))) => {
                    self.reached();
                    return Ok(answer);
                }
                Ok(Ok(Err(answer))) => Failure::Answered(answer),
                Ok(Err(detail)) => Failure::Transport(detail),
            };
            let wait = self.policy.backoff.delay(attempt);
            if retries && attempt < self.policy.backoff.attempts && Instant::now() + wait < deadline
            {
                tracing::debug!(%method, attempt, ?wait, "admin API unavailable; retrying");
                tokio::select! {
                    biased;
                    () = self.stop.stopped() => return Err(self.stopped(&method)),
                    () = tokio::time::sleep(wait) => continue,
                }
            }
            return match failure {
                Failure::Answered(answer) => Ok(answer),
                Failure::Transport(detail) if !retries => Err(Status::unavailable(format!(
                    "the connection to the Sluice admin API at {} failed during {method} ({detail}): \
                     the change may or may not have been applied; run `terraform plan` (or \
                     import) to see",
                    self.policy.endpoint
                ))),
                Failure::Transport(detail) => Err(self.unreachable(detail)),
            };
        }
    }
}

/// One try: the whole answer buffered (so the timeout covers it and its
/// status can be read); `Ok(Err(_))` is an UNAVAILABLE answer, `Err` a
/// transport failure.
async fn once<S>(
    inner: S,
    request: Request<Body>,
) -> Result<Result<Response<Body>, Response<Body>>, String>
where
    S: Service<Request<Body>, Response = Response<Body>> + Send,
    S::Future: Send,
    S::Error: Into<StdError>,
{
    let answer = inner.oneshot(request).await.map_err(|e| {
        let e: StdError = e.into();
        chain(&*e)
    })?;
    let (parts, body) = answer.into_parts();
    let collected = body.collect().await.map_err(|e| chain(&e))?;
    let unavailable = says_unavailable(&parts, collected.trailers());
    let answer = Response::from_parts(parts, Body::new(collected));
    Ok(if unavailable { Err(answer) } else { Ok(answer) })
}

impl<S> Service<Request<Body>> for Guarded<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<StdError>,
{
    type Response = Response<Body>;
    type Error = StdError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, StdError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), StdError>> {
        // Readiness of the inner service is awaited per call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let shared = self.shared.clone();
        Box::pin(async move {
            shared
                .call(inner, request)
                .await
                .map_err(|s| Box::new(s) as StdError)
        })
    }
}

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;
