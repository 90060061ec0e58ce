//! The admin API's errors and their gRPC status codes.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// Why an admin request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request broke validation rules; each violation names its field.
    #[error("invalid {kind}: {}", summary(.violations))]
    Invalid {
        /// The kind of entity being written.
        kind: &'static str,
        /// One entry per broken rule.
        violations: Vec<FieldViolation>,
    },
    /// No such entity.
    #[error("{0}")]
    NotFound(String),
    /// A precondition on the entity's revision did not hold.
    #[error("{0}")]
    Aborted(String),
    /// The entity is still referenced, or another state rule blocks it.
    #[error("{0}")]
    FailedPrecondition(String),
    /// Missing or unknown admin token.
    #[error("{0}")]
    Unauthenticated(String),
    /// Asked again too soon (probes are rate-limited).
    #[error("{0}")]
    ResourceExhausted(String),
    /// A server-side failure; details go to the log, not the client.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn summary(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(e.into())
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Invalid { violations, .. } if violations.is_empty() => {
                Status::invalid_argument("invalid request")
            }
            ApiError::Invalid { .. } => {
                let message = e.to_string();
                let ApiError::Invalid { violations, .. } = e else {
                    unreachable!("matched above")
                };
                Status::with_error_details(
                    Code::InvalidArgument,
                    message,
                    ErrorDetails::with_bad_request(violations),
                )
            }
            ApiError::NotFound(m) => Status::not_found(m),
            ApiError::Aborted(m) => Status::aborted(m),
            ApiError::FailedPrecondition(m) => Status::failed_precondition(m),
            ApiError::Unauthenticated(m) => Status::unauthenticated(m),
            ApiError::ResourceExhausted(m) => Status::resource_exhausted(m),
            ApiError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                Status::internal("internal error; the server log has the details")
            }
        }
    }
}

/// Collects every rule a request breaks, with the field path of each.
#[derive(Debug, Default)]
pub struct Violations(Vec<Found>);

/// One broken rule and the other fields its verdict depends on.
#[derive(Debug)]
struct Found {
    violation: FieldViolation,
    /// Fields besides the violation's own that the rule compared it with.
    compared: Vec<String>,
}

impl Violations {
    /// Records that `field` breaks a rule.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.add_comparing(field, Vec::<String>::new(), description);
    }

    /// Records that `field` breaks a rule that looked at the `compared`
    /// fields too (the verdict cannot stand while one of them is unknown).
    pub fn add_comparing(
        &mut self,
        field: impl Into<String>,
        compared: impl IntoIterator<Item = impl Into<String>>,
        description: impl Into<String>,
    ) {
        self.0.push(Found {
            violation: FieldViolation::new(field, description),
            compared: compared.into_iter().map(Into::into).collect(),
        });
    }

    /// Whether something was recorded about `field` already.
    pub fn has(&self, field: &str) -> bool {
        self.0.iter().any(|f| f.violation.field == field)
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps the violations for which `keep(field, compared fields)` holds.
    pub fn retain(&mut self, keep: impl Fn(&str, &[String]) -> bool) {
        self.0.retain(|f| keep(&f.violation.field, &f.compared));
    }

    /// `Ok` when nothing was recorded, else an [`ApiError::Invalid`].
    pub fn into_result(self, kind: &'static str) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid {
                kind,
                violations: self.0.into_iter().map(|f| f.violation).collect(),
            })
        }
    }
}

impl ApiError {
    /// A request with one invalid field.
    pub fn invalid(kind: &'static str, field: &str, description: &str) -> Self {
        ApiError::Invalid {
            kind,
            violations: vec![FieldViolation::new(field, description)],
        }
    }
}
