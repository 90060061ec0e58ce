//! A small identity provider for OAUTHBEARER tests: ES256 signing keys
//! the test generates, their public halves served as a JWKS document by a
//! real HTTP server on loopback (hyper), and tokens minted with them.
//! Python clients mint their own tokens from the key's PEM file (PyJWT),
//! as an application's token source would.

use std::{
    convert::Infallible,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tokio::net::TcpListener;

/// The issuer every minted token carries unless told otherwise.
pub const ISSUER: &str = "https://idp.sluice.test";
/// The audience every minted token carries unless told otherwise.
pub const AUDIENCE: &str = "sluice-gateway";

/// An ES256 (P-256) signing key with its `kid`.
pub struct SigningKey {
    /// The key id published in the JWKS and put in token headers.
    pub kid: String,
    pem: String,
    pkcs8: Vec<u8>,
    public: Vec<u8>,
}

impl SigningKey {
    /// A new random key.
    pub fn new(kid: &str) -> SigningKey {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("EC key");
        SigningKey {
            kid: kid.into(),
            pem: pair.serialize_pem(),
            pkcs8: pair.serialize_der(),
            public: pair.public_key_raw().to_vec(),
        }
    }

    /// The public key as a JWK (RFC 7518 §6.2: the uncompressed point's
    /// coordinates).
    pub fn jwk(&self) -> serde_json::Value {
        let (x, y) = self.public[1..].split_at(32);
        serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256",
            "kid": self.kid, "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        })
    }

    /// Writes the private key (PKCS#8 PEM) to `dir/<kid>.pem`.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join(format!("{}.pem", self.kid));
        std::fs::write(&path, &self.pem).expect("write key");
        path
    }

    /// A token for `sub` valid from now for `lifetime` (in the past when
    /// negative), with the default issuer and audience.
    pub fn token(&self, sub: &str, lifetime_secs: i64) -> String {
        self.token_with(serde_json::json!({
            "sub": sub,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "exp": now_secs() + lifetime_secs,
            "iat": now_secs(),
        }))
    }

    /// A token with these claims exactly.
    pub fn token_with(&self, claims: serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let key = EncodingKey::from_ec_der(&self.pkcs8);
        jsonwebtoken::encode(&header, &claims, &key).expect("sign token")
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A JWKS endpoint on loopback whose published keys a test can change.
pub struct Provider {
    /// Where it listens.
    pub addr: SocketAddr,
    document: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Provider {
    /// Starts serving `keys` on 127.0.0.1 (a port the OS picks).
    pub async fn start(keys: &[&SigningKey]) -> Provider {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind JWKS");
        let addr = listener.local_addr().expect("JWKS address");
        let document = Arc::new(Mutex::new(String::new()));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (document.clone(), fetches.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (served, counted) = (served.clone(), counted.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |_: Request<Incoming>| {
                        counted.fetch_add(1, Ordering::SeqCst);
                        let body = served.lock().map(|d| d.clone()).unwrap_or_default();
                        async move {
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(body)))
                                    .expect("response"),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let provider = Provider {
            addr,
            document,
            fetches,
            task,
        };
        provider.publish(keys);
        provider
    }

    /// The JWKS URL.
    pub fn url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.addr)
    }

    /// Publishes exactly `keys` from now on (a rotation).
    pub fn publish(&self, keys: &[&SigningKey]) {
        let doc = serde_json::json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() });
        *self.document.lock().expect("JWKS document") = doc.to_string();
    }

    /// How many times the document was fetched.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Waits up to `wait` for at least `n` fetches.
    pub async fn wait_for_fetches(&self, n: usize, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        while self.fetches() < n {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
    }
}
