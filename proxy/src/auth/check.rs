//! The gateway's own check of a client's credentials, for the rules that
//! check them (`sasl_plain` terminate, `oauth_bearer` terminate and
//! validate_forward): in the gate, and again when a client
//! re-authenticates on an open connection (KIP-368).

use std::time::SystemTime;

use tokio::time::Instant;

use crate::hop::Kind;

use super::{
    Rule,
    jwks::TokenError,
    oauth,
    plain::{self, Refusal},
};

/// Who the credentials name, and until when they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The principal's name.
    pub user: String,
    /// A token's `exp`; `None` for a password.
    pub expires_at: Option<SystemTime>,
}

/// Why credentials were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// What the client is told (never which half was wrong).
    pub told: String,
    /// What the operator is told.
    pub why: String,
    /// Set when the gateway could not check at all (no turn free, the
    /// identity provider unreachable): the client is closed without an
    /// answer, so it reconnects and retries instead of taking its
    /// credentials for wrong, and the refusal is counted as this kind.
    pub unanswered: Option<Kind>,
}

/// Checks `auth_bytes` (a SaslAuthenticate payload) under `rule`, before
/// `deadline`; `label` names the virtual cluster to the client.
pub async fn check(
    rule: &Rule,
    auth_bytes: &[u8],
    deadline: Instant,
    label: &str,
) -> Result<Checked, Refused> {
    let told = format!("Authentication failed: invalid credentials for virtual cluster {label:?}");
    let refuse = |why: String| Refused {
        told: told.clone(),
        why,
        unanswered: None,
    };
    let unanswered = |kind: Kind, why: String| Refused {
        told: String::new(),
        why,
        unanswered: Some(kind),
    };
    match rule {
        Rule::PlainTerminate(hashes) => {
            let credentials = plain::parse(auth_bytes).map_err(|why| refuse(why.into()))?;
            let user = credentials.username.to_string();
            match plain::check(hashes, &credentials, deadline).await {
                Ok(()) => Ok(Checked {
                    user,
                    expires_at: None,
                }),
                Err(Refusal::Mismatch) => Err(refuse(format!(
                    "wrong username or password (username {})",
                    echo(&user)
                ))),
                Err(Refusal::Busy) => Err(unanswered(
                    Kind::Busy,
                    format!(
                        "no turn to check the password of {} before the deadline (too many \
                         logins at once); the connection is closed without an answer so the \
                         client retries",
                        echo(&user)
                    ),
                )),
            }
        }
        Rule::Oauth(o) => {
            let Some(validator) = &o.validator else {
                return Err(refuse("this rule does not check tokens".into()));
            };
            let response = oauth::initial_response(auth_bytes).map_err(refuse)?;
            let claims =
                match tokio::time::timeout_at(deadline, validator.verify(response.token)).await {
                    Ok(Ok(claims)) => claims,
                    Ok(Err(TokenError::Refused(why))) => return Err(refuse(why)),
                    Ok(Err(TokenError::Unavailable(why))) => {
                        return Err(unanswered(
                            Kind::Unreachable,
                            format!(
                                "{why}; no token can be checked, so the connection is closed \
                             without an answer and the client retries"
                            ),
                        ));
                    }
                    Err(_) => {
                        return Err(unanswered(
                            Kind::Timeout,
                            "the token could not be checked before the handshake deadline (the \
                         JWKS fetch goes on); the connection is closed without an answer and \
                         the client retries"
                                .into(),
                        ));
                    }
                };
            // The leeway on exp is for clock skew while a token is in
            // flight; a session never starts on a token already past exp
            // (it would end at once).
            if claims.expires_at <= SystemTime::now() {
                return Err(refuse("the token has expired (exp)".into()));
            }
            if let Some(authzid) = response.authzid
                && authzid != claims.subject
            {
                return Err(refuse(format!(
                    "the client asks to act as {} but its token is for {}",
                    echo(authzid),
                    echo(&claims.subject)
                )));
            }
            Ok(Checked {
                user: claims.subject,
                expires_at: Some(claims.expires_at),
            })
        }
        _ => Err(refuse("this rule does not check credentials".into())),
    }
}

/// The `sub` of a token the broker checks (passthrough): the principal
/// as logged, read without verifying (the broker verifies).
pub fn unverified_subject(auth_bytes: &[u8]) -> Option<String> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let token = oauth::initial_response(auth_bytes).ok()?.token;
    let payload = token.split('.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims["sub"].as_str().map(str::to_string)
}

/// Milliseconds until `at` (at least 1: an expired token is refused
/// before this is asked), for KIP-368's `session_lifetime_ms`.
pub fn lifetime_ms(at: Option<SystemTime>) -> i64 {
    at.map_or(0, |at| {
        at.duration_since(SystemTime::now()).map_or(1, |d| {
            i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
        })
    })
}

/// Client-chosen text as it appears in messages: quoted, bounded.
pub fn echo(text: &str) -> String {
    super::jwks::shown(text)
}
