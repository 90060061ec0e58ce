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
            ApiError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                Status::internal("internal error; the server log has the details")
            }
        }
    }
}

/// Collects every rule a request breaks, with the field path of each.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// Records that `field` breaks a rule.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// Whether something was recorded about `field` already.
    pub fn has(&self, field: &str) -> bool {
        self.0.iter().any(|v| v.field == field)
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing was recorded, else an [`ApiError::Invalid`].
    pub fn into_result(self, kind: &'static str) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid {
                kind,
                violations: self.0,
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
