//! SASL PLAIN (RFC 4616) checked by the gateway (`terminate`): the
//! client's username and password against the argon2id hashes the control
//! plane sent, compared by the `argon2` crate in constant time.
//!
//! A check costs what the control plane's hash parameters say (about
//! 50 ms of one core and 19 MiB): checks run off the runtime, on at most
//! half the cores at a time, and wait for a turn only until the
//! connection's deadline, so a login storm slows logins, never the
//! traffic of connected clients. A username with no principal costs a
//! check too (against a fixed hash), so timing does not tell which names
//! exist. A password that passed is remembered (as a keyed digest, in
//! memory, for that exact hash), so a client reconnecting costs
//! microseconds instead of another slow check.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
};

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier, password_hash::SaltString};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::{sync::Semaphore, time::Instant};

/// The longest username and password read from a PLAIN message.
const MAX_FIELD: usize = 1024;
/// Remembered successful checks before the memory is emptied.
const REMEMBERED: usize = 10_000;

/// What a PLAIN message carries.
#[derive(Debug, PartialEq, Eq)]
pub struct Credentials<'a> {
    /// The user to authenticate as.
    pub username: &'a str,
    /// Its password.
    pub password: &'a str,
}

/// Reads `[authzid] NUL authcid NUL passwd`; an authorization identity
/// other than the username (acting as someone else) is refused.
pub fn parse(message: &[u8]) -> Result<Credentials<'_>, &'static str> {
    let mut parts = message.splitn(3, |b| *b == 0);
    let (Some(authzid), Some(user), Some(password)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err("not a PLAIN message (authzid NUL username NUL password)");
    };
    if user.is_empty() || user.len() > MAX_FIELD || password.len() > MAX_FIELD {
        return Err("a PLAIN username must be 1-1024 bytes and a password at most 1024");
    }
    if !authzid.is_empty() && authzid != user {
        return Err("a PLAIN authorization identity other than the username is not accepted");
    }
    let username = std::str::from_utf8(user).map_err(|_| "the PLAIN username is not UTF-8")?;
    let password = std::str::from_utf8(password).map_err(|_| "the PLAIN password is not UTF-8")?;
    Ok(Credentials { username, password })
}

/// The username of a PLAIN message the broker checks (passthrough):
/// only the username must be readable (UTF-8, 1-1024 bytes) and the
/// authorization identity empty or the same; the password is the
/// broker's business (a long token, say) and is not looked at.
pub fn relayed_username(message: &[u8]) -> Option<&str> {
    let mut parts = message.splitn(3, |b| *b == 0);
    let (authzid, user, _password) = (parts.next()?, parts.next()?, parts.next()?);
    if user.is_empty() || user.len() > MAX_FIELD || (!authzid.is_empty() && authzid != user) {
        return None;
    }
    std::str::from_utf8(user).ok()
}

/// Why a check did not pass.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown username or wrong password (never said which).
    Mismatch,
    /// No turn to check before the connection's deadline.
    Busy,
}

/// Checks `credentials` against the hashes of one rule, by username.
pub async fn check(
    hashes: &HashMap<String, String>,
    credentials: &Credentials<'_>,
    deadline: Instant,
) -> Result<(), Refusal> {
    let known = hashes.get(credentials.username).cloned();
    let digest = remembered_digest(credentials.password);
    if let Some(hash) = &known
        && remembered(hash, &digest)
    {
        return Ok(());
    }
    let turn = tokio::time::timeout_at(deadline, turns().clone().acquire_owned())
        .await
        .map_err(|_| Refusal::Busy)?
        .map_err(|_| Refusal::Busy)?;
    let password = credentials.password.to_string();
    let known_hash = known.clone();
    let verified = tokio::task::spawn_blocking(move || {
        let _turn = turn;
        let hash = known_hash.unwrap_or_else(|| unknown_user_hash().to_string());
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
    .await
    .unwrap_or(false);
    match (verified, known) {
        (true, Some(hash)) => {
            remember(hash, digest);
            Ok(())
        }
        _ => Err(Refusal::Mismatch),
    }
}

/// Turns for slow checks: half the cores (at least one), so a storm of
/// logins (or of made-up usernames, which cost a check too) leaves the
/// other half to the traffic of connected clients.
fn turns() -> &'static Arc<Semaphore> {
    static TURNS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    TURNS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Arc::new(Semaphore::new((cores / 2).max(1)))
    })
}

/// A hash no password matches in practice, at the default cost, checked
/// for usernames without a principal.
fn unknown_user_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).ok();
        let secret: [u8; 32] = rand::random();
        salt.and_then(|s| {
            Argon2::default()
                .hash_password(&secret, &s)
                .ok()
                .map(|h| h.to_string())
        })
        .unwrap_or_default()
    })
}

/// Remembered passes: hash → keyed digests of passwords that matched it.
type Memory = HashMap<String, Vec<[u8; 32]>>;

fn memory() -> &'static Mutex<Memory> {
    static MEMORY: OnceLock<Mutex<Memory>> = OnceLock::new();
    MEMORY.get_or_init(Mutex::default)
}

/// The process's key for remembered digests (never leaves memory).
fn digest_key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(rand::random)
}

fn remembered_digest(password: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(digest_key())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(password.as_bytes());
    mac
}

fn remembered(hash: &str, digest: &Hmac<Sha256>) -> bool {
    let Ok(memory) = memory().lock() else {
        return false;
    };
    memory.get(hash).is_some_and(|passes| {
        passes
            .iter()
            .any(|pass| digest.clone().verify_slice(pass).is_ok())
    })
}

fn remember(hash: String, digest: Hmac<Sha256>) {
    let Ok(mut memory) = memory().lock() else {
        return;
    };
    if memory.len() >= REMEMBERED {
        memory.clear();
    }
    let pass: [u8; 32] = digest.finalize().into_bytes().into();
    let passes = memory.entry(hash).or_default();
    if !passes.contains(&pass) && passes.len() < 4 {
        passes.push(pass);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn hash_of(password: &str) -> String {
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    #[test]
    fn plain_messages_are_read_and_impersonation_refused() {
        assert_eq!(
            parse(b"\0alice\0pw"),
            Ok(Credentials {
                username: "alice",
                password: "pw"
            })
        );
        assert_eq!(parse(b"alice\0alice\0pw").unwrap().username, "alice");
        assert!(parse(b"admin\0alice\0pw").is_err());
        assert!(parse(b"\0alice").is_err());
        assert!(parse(b"\0\0pw").is_err());
        assert!(parse(&[0, 0xff, 0, b'p']).is_err());
        // The password may hold NUL-free bytes of any kind, and NULs past
        // the second separator belong to it.
        assert_eq!(parse(b"\0bob\0p\0w").unwrap().password, "p\0w");
    }

    #[tokio::test]
    async fn only_the_right_password_for_a_known_user_passes() {
        let hashes = HashMap::from([("alice".to_string(), hash_of("right-pw"))]);
        let deadline = Instant::now() + Duration::from_secs(30);
        let try_ = |username, password| {
            let hashes = hashes.clone();
            async move { check(&hashes, &Credentials { username, password }, deadline).await }
        };
        assert_eq!(try_("alice", "right-pw").await, Ok(()));
        // Remembered now: passes again, and a wrong one still fails.
        assert_eq!(try_("alice", "right-pw").await, Ok(()));
        assert_eq!(try_("alice", "wrong-pw").await, Err(Refusal::Mismatch));
        assert_eq!(try_("mallory", "right-pw").await, Err(Refusal::Mismatch));
        // A changed hash (new password) does not honour what was remembered.
        let changed = HashMap::from([("alice".to_string(), hash_of("new-pw"))]);
        let old = Credentials {
            username: "alice",
            password: "right-pw",
        };
        assert_eq!(
            check(&changed, &old, deadline).await,
            Err(Refusal::Mismatch)
        );
    }
}
