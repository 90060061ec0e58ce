//! The JWKS documents (RFC 7517 key sets) that OAUTHBEARER tokens are
//! verified against, fetched from the identity provider and shared by
//! every virtual cluster of the node, keyed by endpoint URL.
//!
//! A document is fetched when a token first needs it, within the rule's
//! timeout and with its body capped at [`MAX_DOCUMENT`], and kept for the
//! rule's cache expiration. A token naming a `kid` the cached set lacks
//! (the provider rotated its keys) triggers one refetch, but an endpoint
//! is asked at most once per [`REFETCH_INTERVAL`] and concurrent lookups
//! wait for the same fetch: a client sending random kids cannot make the
//! gateway hammer the provider. When a refetch fails the keys of the last
//! good fetch stay in use (as Kafka's own validator does) for at most
//! [`MAX_STALE`] past their expiration, so a provider outage does not lock
//! out clients whose tokens still verify; a document the provider does
//! serve replaces them, even one without a usable key (a revocation).
//!
//! Only asymmetric signing keys are kept (RSA of 2048-4096 bits, EC P-256
//! and P-384, Ed25519): a symmetric (`oct`) key published in a JWKS would
//! let anyone sign. A key that cannot be parsed, or is for encryption, is
//! skipped, never fatal to the rest of the document.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use arc_swap::ArcSwapOption;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse},
};
use serde::Deserialize;
use sluice_proto::admin::v1::Jwks;
use tokio::sync::OwnedMutexGuard;

/// The largest JWKS document read (real ones are a few KiB).
pub const MAX_DOCUMENT: usize = 1024 * 1024;
/// The least time between two fetches of one endpoint.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// How long past its cache expiration a document's keys still verify
/// tokens while refetches fail.
pub const MAX_STALE: Duration = Duration::from_secs(24 * 3600);
/// The fetch timeout when the rule leaves it unset.
const DEFAULT_TIMEOUT: u32 = 10;
/// How long keys are kept when the rule leaves it unset.
const DEFAULT_EXPIRATION: u32 = 3600;
/// The RSA modulus sizes accepted, in bits (the verifier's own maximum is
/// 4096; below 2048 is too weak to trust).
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

/// Where a rule's keys come from: a compiled `jwks` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    endpoint: reqwest::Url,
    timeout: Duration,
    expiration: Duration,
}

impl Source {
    /// Compiles a `jwks` block; the error names the field
    /// (`jwks.endpoint: ...`).
    pub fn compile(jwks: &Jwks) -> Result<Source, String> {
        let endpoint = reqwest::Url::parse(&jwks.endpoint)
            .map_err(|e| format!("jwks.endpoint: {:?} is not a URL ({e})", jwks.endpoint))?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
            return Err(format!(
                "jwks.endpoint: {:?} is not an http:// or https:// URL",
                jwks.endpoint
            ));
        }
        let or = |value: u32, default: u32| u64::from(if value == 0 { default } else { value });
        Ok(Source {
            endpoint,
            timeout: Duration::from_secs(or(jwks.timeout, DEFAULT_TIMEOUT)),
            expiration: Duration::from_secs(or(jwks.cache_expiration, DEFAULT_EXPIRATION)),
        })
    }
}

/// Why a token could not be verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// The token itself is refused (signature, claims, an unknown key).
    Refused(String),
    /// No key set could be had to check it against (the identity
    /// provider is unreachable): no token can be checked, so the client is
    /// not told its credentials are wrong.
    Unavailable(String),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Refused(why) | TokenError::Unavailable(why) => f.write_str(why),
        }
    }
}

impl From<String> for TokenError {
    fn from(why: String) -> Self {
        TokenError::Refused(why)
    }
}

impl From<&str> for TokenError {
    fn from(why: &str) -> Self {
        TokenError::Refused(why.to_string())
    }
}

/// One verification key of a JWKS.
#[derive(Debug)]
pub struct Key {
    /// Its `kid`, when the document gives one.
    pub kid: Option<String>,
    /// The public key.
    pub(crate) decoding: DecodingKey,
    /// The algorithms it verifies: its `alg`, or every one of its type.
    pub algorithms: Vec<Algorithm>,
}

/// The JWKS documents a node has fetched, shared by every virtual
/// cluster (keyed by endpoint URL).
#[derive(Debug)]
pub struct KeySets {
    endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
    client: OnceLock<Result<reqwest::Client, String>>,
    refetch_interval: Duration,
}

/// One endpoint's keys and fetches.
#[derive(Debug, Default)]
struct Endpoint {
    /// The last good document, read without waiting.
    current: ArcSwapOption<Fetched>,
    /// Held while fetching: lookups that need a fetch line up here and
    /// find the result instead of fetching again.
    attempts: Arc<tokio::sync::Mutex<Attempts>>,
}

#[derive(Debug, Default)]
struct Attempts {
    last: Option<Instant>,
    error: Option<String>,
}

/// A parsed document.
#[derive(Debug)]
struct Fetched {
    at: Instant,
    keys: Vec<Arc<Key>>,
}

/// What a lookup in a document found.
enum Found {
    Key(Arc<Key>),
    /// Keys with that kid exist, none for the token's algorithm.
    OtherAlgorithm(Vec<Algorithm>),
    Unknown,
}

impl Fetched {
    fn fresh(&self, expiration: Duration) -> bool {
        self.at.elapsed() < expiration
    }

    /// Whether its keys may still verify tokens: fresh, or expired for no
    /// longer than [`MAX_STALE`] (a provider outage does not lock clients
    /// out at once, and a key it withdrew is not trusted forever).
    fn usable(&self, expiration: Duration) -> bool {
        self.at.elapsed() < expiration.saturating_add(MAX_STALE)
    }

    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Found {
        let named: Vec<&Arc<Key>> = match kid {
            Some(kid) => self
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect(),
            // A token without a kid names no key: only a document with
            // exactly one key says which one it is.
            None if self.keys.len() == 1 => self.keys.iter().collect(),
            None => Vec::new(),
        };
        if let Some(key) = named.iter().find(|k| k.algorithms.contains(&alg)) {
            return Found::Key(Arc::clone(key));
        }
        if named.is_empty() {
            Found::Unknown
        } else {
            Found::OtherAlgorithm(named.iter().flat_map(|k| k.algorithms.clone()).collect())
        }
    }
}

impl Default for KeySets {
    fn default() -> Self {
        KeySets::new()
    }
}

impl KeySets {
    /// No documents yet; the HTTP client is built at the first fetch.
    pub fn new() -> KeySets {
        // Verification uses the process's jsonwebtoken provider: make it
        // RustCrypto explicitly, so a build that also enables another
        // backend does not end up with none.
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
        KeySets {
            endpoints: Mutex::default(),
            client: OnceLock::new(),
            refetch_interval: REFETCH_INTERVAL,
        }
    }

    #[cfg(test)]
    pub(crate) fn with_refetch_interval(interval: Duration) -> KeySets {
        KeySets {
            refetch_interval: interval,
            ..KeySets::new()
        }
    }

    /// The key of `source` named `kid` that verifies `alg`, fetching the
    /// document when it is missing, or refetching it once when the kid is
    /// unknown (at most once per refetch interval). An expired document
    /// still answers (for at most [`MAX_STALE`] more) while a refetch runs
    /// beside the lookup. A fetch runs as its own task: a client whose
    /// deadline passes gives up waiting, the fetch goes on and fills the
    /// cache for the next login.
    pub async fn key(
        self: &Arc<Self>,
        source: &Source,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<Key>, TokenError> {
        let endpoint = self.endpoint(source);
        if let Some(current) = endpoint.current.load_full()
            && current.usable(source.expiration)
            && let Found::Key(key) = current.find(kid, alg)
        {
            if !current.fresh(source.expiration) {
                self.refresh_beside(&endpoint, source);
            }
            return Ok(key);
        }
        let attempts = Arc::clone(&endpoint.attempts).lock_owned().await;
        // Another lookup may have fetched while this one waited.
        let current = endpoint.current.load_full();
        let wanted = match &current {
            Some(set) if set.fresh(source.expiration) => match set.find(kid, alg) {
                Found::Key(key) => return Ok(key),
                Found::OtherAlgorithm(_) => false,
                Found::Unknown => kid.is_some(),
            },
            _ => true,
        };
        let allowed = attempts
            .last
            .is_none_or(|at| at.elapsed() >= self.refetch_interval);
        let attempts = if wanted && allowed {
            let fetching = tokio::spawn(Arc::clone(self).fetch_into(
                Arc::clone(&endpoint),
                source.clone(),
                attempts,
            ));
            match fetching.await {
                Ok(attempts) => attempts,
                Err(e) => {
                    return Err(TokenError::Unavailable(format!(
                        "the JWKS fetch from {} ended: {e}",
                        source.endpoint
                    )));
                }
            }
        } else {
            attempts
        };
        let error = attempts.error.clone();
        drop(attempts);
        let Some(current) = endpoint
            .current
            .load_full()
            .filter(|c| c.usable(source.expiration))
        else {
            return Err(TokenError::Unavailable(format!(
                "the JWKS at {} could not be fetched: {}",
                source.endpoint,
                error.as_deref().unwrap_or("no fetch has finished yet")
            )));
        };
        match current.find(kid, alg) {
            Found::Key(key) => Ok(key),
            Found::OtherAlgorithm(algorithms) => Err(TokenError::Refused(format!(
                "key {} is for {algorithms:?}, not {alg:?}",
                shown(kid.unwrap_or_default())
            ))),
            // A kid the cached set lacks while the provider cannot be
            // asked (its refetch failed) is not the token's fault.
            Found::Unknown if kid.is_some() && error.is_some() => {
                Err(TokenError::Unavailable(format!(
                    "no key {} in the cached JWKS of {}, and refetching it failed: {}",
                    shown(kid.unwrap_or_default()),
                    source.endpoint,
                    error.as_deref().unwrap_or_default()
                )))
            }
            Found::Unknown => Err(TokenError::Refused(match kid {
                Some(kid) => format!("no key {} in the JWKS at {}", shown(kid), source.endpoint),
                None => "the token names no key (kid) and the JWKS holds several".into(),
            })),
        }
    }

    /// Refetches an expired document in the background unless a fetch is
    /// running or one ran within the refetch interval.
    fn refresh_beside(self: &Arc<Self>, endpoint: &Arc<Endpoint>, source: &Source) {
        let Ok(attempts) = Arc::clone(&endpoint.attempts).try_lock_owned() else {
            return;
        };
        if attempts
            .last
            .is_some_and(|at| at.elapsed() < self.refetch_interval)
        {
            return;
        }
        tokio::spawn(Arc::clone(self).fetch_into(Arc::clone(endpoint), source.clone(), attempts));
    }

    /// One fetch of `source` into `endpoint`, holding its attempts (so
    /// other lookups wait for this fetch instead of starting another),
    /// which it hands back.
    async fn fetch_into(
        self: Arc<Self>,
        endpoint: Arc<Endpoint>,
        source: Source,
        mut attempts: OwnedMutexGuard<Attempts>,
    ) -> OwnedMutexGuard<Attempts> {
        attempts.last = Some(Instant::now());
        match self.fetch(&source).await {
            Ok(fetched) => {
                tracing::debug!(endpoint = %source.endpoint, keys = fetched.keys.len(), "JWKS fetched");
                endpoint.current.store(Some(Arc::new(fetched)));
                attempts.error = None;
            }
            Err(e) => {
                tracing::warn!(endpoint = %source.endpoint, error = %e, "JWKS fetch failed");
                attempts.error = Some(e);
            }
        }
        attempts
    }

    /// The entry of `source`'s endpoint, made on first use.
    fn endpoint(&self, source: &Source) -> Arc<Endpoint> {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            endpoints
                .entry(source.endpoint.as_str().to_string())
                .or_default(),
        )
    }

    /// The HTTP client: system roots for https, no redirects.
    fn client(&self) -> Result<&reqwest::Client, String> {
        self.client
            .get_or_init(|| {
                let tls = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| format!("TLS: {e}"))?
                    .with_root_certificates(crate::tls::client::system_roots())
                    .with_no_client_auth();
                reqwest::Client::builder()
                    .user_agent(concat!("sluice-proxy/", env!("CARGO_PKG_VERSION")))
                    .tls_backend_preconfigured(tls)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| format!("HTTP client: {}", describe(e)))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Fetches and parses `source`'s document within its timeout.
    async fn fetch(&self, source: &Source) -> Result<Fetched, String> {
        let client = self.client()?;
        let body = tokio::time::timeout(source.timeout, async {
            let mut response = client
                .get(source.endpoint.clone())
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(describe)?;
            let status = response.status();
            if !status.is_success() {
                return Err(format!("it answered HTTP {status}"));
            }
            let too_large = || format!("the document is larger than {MAX_DOCUMENT} bytes");
            if response
                .content_length()
                .is_some_and(|n| n > MAX_DOCUMENT as u64)
            {
                return Err(too_large());
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(describe)? {
                if body.len() + chunk.len() > MAX_DOCUMENT {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        })
        .await
        .map_err(|_| format!("no answer within {} s", source.timeout.as_secs()))??;
        parse(&body)
    }
}

/// The usable keys of a JWKS document; fails only when the document is
/// not one or holds no usable key.
fn parse(body: &[u8]) -> Result<Fetched, String> {
    #[derive(Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document =
        serde_json::from_slice(body).map_err(|e| format!("not a JWKS document ({e})"))?;
    let total = document.keys.len();
    let mut keys = Vec::new();
    for (i, value) in document.keys.into_iter().enumerate() {
        match key(value) {
            Ok(key) => keys.push(Arc::new(key)),
            Err(why) => tracing::debug!(key = i, why, "JWKS key skipped"),
        }
    }
    if keys.is_empty() {
        // The provider says there are no keys (an emergency revocation,
        // say): believed, like any other document, so no token verifies.
        tracing::warn!(
            keys = total,
            "none of the JWKS document's keys is a usable signing key"
        );
    }
    Ok(Fetched {
        at: Instant::now(),
        keys,
    })
}

/// One JWK as a verification key, or why it is skipped.
fn key(value: serde_json::Value) -> Result<Key, String> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|e| format!("not a JWK ({e})"))?;
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return Err("not a signing key (use)".into());
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Err("not a verification key (key_ops)".into());
    }
    let family: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let n = decoded(&rsa.n)?;
            let bits = n
                .iter()
                .position(|b| *b != 0)
                .map_or(0, |i| (n.len() - i) * 8 - n[i].leading_zeros() as usize);
            if !RSA_BITS.contains(&bits) {
                return Err(format!("an RSA key of {bits} bits"));
            }
            let e = decoded(&rsa.e)?;
            if e.is_empty() || e.len() > 8 {
                return Err("an RSA exponent out of range".into());
            }
            vec![
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ]
        }
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return Err(format!("curve {:?} is not supported", ec.curve)),
        },
        AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
            // The verifier reads exactly 32 bytes: check before it does.
            EllipticCurve::Ed25519 if decoded(&okp.x)?.len() == 32 => vec![Algorithm::EdDSA],
            _ => return Err("not an Ed25519 public key".into()),
        },
        _ => return Err("not an asymmetric key (RSA, EC, OKP)".into()),
    };
    let algorithms = match jwk.common.key_algorithm {
        None => family,
        Some(declared) => match Algorithm::try_from(declared) {
            Ok(alg) if family.contains(&alg) => vec![alg],
            _ => return Err(format!("alg {declared} does not fit the key")),
        },
    };
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| format!("unusable ({e})"))?;
    // Building a verifier parses the key (an EC point must be on its curve).
    let verifier = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.verifier_factory;
    for alg in &algorithms {
        verifier(alg, &decoding).map_err(|e| format!("unusable ({e})"))?;
    }
    Ok(Key {
        kid: jwk.common.key_id,
        decoding,
        algorithms,
    })
}

fn decoded(value: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|_| "a parameter that is not base64url".to_string())
}

/// A value from a token, quoted and cut short for messages.
pub(crate) fn shown(value: &str) -> String {
    const MAX: usize = 64;
    match value.char_indices().nth(MAX) {
        Some((at, _)) => format!("{:?}…", &value[..at]),
        None => format!("{value:?}"),
    }
}

/// A reqwest error with its causes, without the URL (the caller names
/// the endpoint).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;
    use tokio::net::TcpListener;

    use super::*;
    use crate::auth::oauth::tests::{Idp, es256, jwks};

    async fn lookup(keys: &Arc<KeySets>, source: &Source, kid: &str) -> Result<Arc<Key>, String> {
        let found = keys.key(source, Some(kid), Algorithm::ES256);
        tokio::time::timeout(Duration::from_secs(10), found)
            .await
            .expect("lookup hangs")
            .map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn an_unknown_kid_refetches_once_and_a_rotated_key_is_picked_up() {
        let (a, b) = (es256("a"), es256("b"));
        let idp = Idp::start(jwks(&[&a]), Duration::ZERO).await;
        let interval = Duration::from_millis(300);
        let keys = Arc::new(KeySets::with_refetch_interval(interval));
        let source = Source::compile(&idp.jwks(0)).unwrap();
        assert!(lookup(&keys, &source, "a").await.is_ok());
        assert_eq!(idp.fetches(), 1);
        tokio::time::sleep(interval).await;
        assert!(lookup(&keys, &source, "b").await.is_err());
        assert_eq!(idp.fetches(), 2, "an unknown kid refetches once");
        idp.serve(jwks(&[&a, &b]));
        assert!(lookup(&keys, &source, "b").await.is_err());
        assert_eq!(idp.fetches(), 2, "not again within the interval");
        tokio::time::sleep(interval).await;
        assert_eq!(
            lookup(&keys, &source, "b").await.unwrap().kid.as_deref(),
            Some("b")
        );
        assert!(lookup(&keys, &source, "a").await.is_ok());
        assert_eq!(idp.fetches(), 3);
    }

    #[tokio::test]
    async fn random_kids_share_one_fetch() {
        let idp = Idp::start(jwks(&[&es256("a")]), Duration::from_millis(200)).await;
        let keys = Arc::new(KeySets::new());
        let source = Source::compile(&idp.jwks(0)).unwrap();
        let flood = (0..50).map(|i| {
            let (keys, source) = (keys.clone(), source.clone());
            tokio::spawn(async move { lookup(&keys, &source, &format!("r{i}")).await })
        });
        for task in flood.collect::<Vec<_>>() {
            assert!(task.await.unwrap().is_err());
        }
        for i in 0..50 {
            assert!(lookup(&keys, &source, &format!("s{i}")).await.is_err());
        }
        assert!(lookup(&keys, &source, "a").await.is_ok());
        assert_eq!(idp.fetches(), 1, "a kid flood must not hammer the provider");
    }

    #[tokio::test]
    async fn expired_keys_are_refetched_and_kept_while_the_provider_fails() {
        let (a, b) = (es256("a"), es256("b"));
        let idp = Idp::start(jwks(&[&a]), Duration::ZERO).await;
        let keys = Arc::new(KeySets::with_refetch_interval(Duration::from_millis(100)));
        let source = Source::compile(&idp.jwks(1)).unwrap();
        assert!(lookup(&keys, &source, "a").await.is_ok());
        for (body, why) in [
            ("<html>down</html>".to_string(), "not a JWKS document"),
            (
                format!("{{\"keys\":[\"{}\"]}}", "x".repeat(MAX_DOCUMENT)),
                "larger than",
            ),
        ] {
            idp.serve(body);
            tokio::time::sleep(Duration::from_millis(1100)).await;
            assert!(
                lookup(&keys, &source, "a").await.is_ok(),
                "the last good keys stay"
            );
            assert!(keys.fetch(&source).await.unwrap_err().contains(why));
        }
        assert_eq!(idp.fetches(), 5);
        idp.serve(jwks(&[&b]));
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(
            lookup(&keys, &source, "a").await.is_ok(),
            "an expired document answers while it is refetched beside the lookup"
        );
        let mut refused = None;
        for _ in 0..200 {
            if let Err(e) = lookup(&keys, &source, "a").await {
                refused = Some(e);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let err = refused.expect("the refetched document (without a) replaces the old one");
        assert!(err.contains("no key \"a\""), "{err}");
        assert_eq!(idp.fetches(), 6);
        // A document without one usable key revokes every key.
        idp.serve(json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}).to_string());
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let _ = lookup(&keys, &source, "b").await;
        let mut revoked = false;
        for _ in 0..200 {
            if lookup(&keys, &source, "b").await.is_err() {
                revoked = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(revoked, "an empty key set did not replace the old one");
    }

    #[tokio::test]
    async fn a_fetch_outlives_the_login_that_started_it() {
        let a = es256("a");
        let idp = Idp::start(jwks(&[&a]), Duration::from_millis(600)).await;
        let keys = Arc::new(KeySets::new());
        let source = Source::compile(&idp.jwks(60)).unwrap();
        let gave_up = tokio::time::timeout(
            Duration::from_millis(100),
            keys.key(&source, Some("a"), Algorithm::ES256),
        )
        .await;
        assert!(gave_up.is_err(), "the slow provider answered too soon");
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert!(
            lookup(&keys, &source, "a").await.is_ok(),
            "the fetch the first login started filled the cache"
        );
        assert_eq!(idp.fetches(), 1);
    }

    #[tokio::test]
    async fn an_unreachable_provider_is_unavailable_not_a_bad_token() {
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}/jwks", closed.local_addr().unwrap());
        drop(closed);
        let source = Source::compile(&Jwks {
            endpoint,
            ..Default::default()
        })
        .unwrap();
        let err = Arc::new(KeySets::new())
            .key(&source, Some("a"), Algorithm::ES256)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, TokenError::Unavailable(why) if why.contains("could not be fetched")),
            "{err:?}"
        );
    }

    #[test]
    fn unusable_keys_are_skipped() {
        let good = es256("good").jwk;
        let n = |bytes: usize| URL_SAFE_NO_PAD.encode(vec![0xc5; bytes]);
        let document = json!({"keys": [
            "garbage",
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "small", "n": n(128), "e": "AQAB"},
            {"kty": "RSA", "kid": "huge", "n": n(513), "e": "AQAB"},
            {"kty": "RSA", "kid": "rsa", "n": n(256), "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "n": n(256), "e": "AQAB", "use": "enc"},
            {"kty": "RSA", "kid": "wrong-alg", "n": n(256), "e": "AQAB", "alg": "ES256"},
            {"kty": "EC", "kid": "off-curve", "crv": "P-256", "x": n(32), "y": n(32)},
            {"kty": "OKP", "kid": "short", "crv": "Ed25519", "x": n(16)},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": good["x"], "y": good["y"]},
            good,
        ]});
        let fetched = parse(document.to_string().as_bytes()).unwrap();
        let kids: Vec<_> = fetched.keys.iter().map(|k| k.kid.as_deref()).collect();
        assert_eq!(kids, [Some("rsa"), Some("good")]);
        assert_eq!(fetched.keys[0].algorithms.len(), 6);
        assert!(matches!(
            fetched.find(Some("good"), Algorithm::ES384),
            Found::OtherAlgorithm(_)
        ));
        assert!(matches!(
            fetched.find(None, Algorithm::ES256),
            Found::Unknown
        ));
    }

    #[tokio::test]
    async fn https_endpoints_need_a_certificate_the_system_trusts() {
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der());
        let config = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key.unwrap())
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("https://{}/jwks", listener.local_addr().unwrap());
        let handshake = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
            acceptor.accept(tcp).await.is_err()
        });
        let source = Source::compile(&Jwks {
            endpoint,
            ..Default::default()
        })
        .unwrap();
        let err = Arc::new(KeySets::new())
            .key(&source, Some("a"), Algorithm::ES256)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("certificate"), "{err}");
        assert!(handshake.await.unwrap(), "the client refused the handshake");
    }
}
