//! SASL OAUTHBEARER (RFC 7628) tokens checked by the gateway: the
//! client's initial response is read for its bearer token, and a rule
//! that validates (`terminate`, `validate_forward`) verifies it as a JWT
//! signed by a key of the rule's JWKS ([`super::jwks`]), through the
//! `jsonwebtoken` crate.
//!
//! The algorithm a token may use comes from the key, never from the token
//! alone: its `alg` must be one the key's type (or its own `alg`) allows,
//! so `none` and the HMAC algorithms (a public key used as a shared
//! secret) are always refused. `exp` and `sub` are required; `exp` and
//! `nbf` are checked with [`LEEWAY`] of clock skew; `iss` and `aud` are
//! checked when the rule's `validate` block names them. Refusals are short
//! and never quote the token.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, Validation, errors::ErrorKind};
use serde::Deserialize;
use sluice_proto::admin::v1::{Mediation, OauthBearer};

use super::jwks::{KeySets, Source, TokenError, shown};

/// The longest token verified (real ones are 1-4 KiB).
pub const MAX_TOKEN: usize = 32 * 1024;
/// The clock skew allowed on `exp` and `nbf`, in seconds.
pub const LEEWAY: u64 = 30;

/// What a client's OAUTHBEARER initial response carries.
#[derive(Debug, PartialEq, Eq)]
pub struct InitialResponse<'a> {
    /// The authorization identity (`a=`), when the client names one.
    pub authzid: Option<&'a str>,
    /// The bearer token.
    pub token: &'a str,
}

/// Reads a client's initial response (RFC 7628 §3.1:
/// `n,[a=authzid],\x01auth=Bearer <token>\x01[key=value\x01]*\x01`), or
/// says why it is malformed.
pub fn initial_response(bytes: &[u8]) -> Result<InitialResponse<'_>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the response is not UTF-8".to_string())?;
    let gs2 = match text.get(..2) {
        Some("n," | "y,") => &text[2..],
        _ if text.starts_with("p=") => {
            return Err("channel binding (p=) is not supported with OAUTHBEARER".into());
        }
        _ => return Err("the response does not start with a GS2 header (n, or y,)".into()),
    };
    let (authzid, rest) = gs2
        .split_once(',')
        .ok_or("the GS2 header does not end with a comma")?;
    let authzid = match authzid {
        "" => None,
        a => Some(
            a.strip_prefix("a=")
                .filter(|a| !a.is_empty())
                .ok_or("the GS2 header's authorization identity is not a=<name>")?,
        ),
    };
    let mut rest = rest.strip_prefix('\x01').ok_or("no \\x01 after GS2")?;
    let mut token = None;
    while rest != "\x01" {
        let (pair, tail) = rest
            .split_once('\x01')
            .ok_or("the key-value pairs do not end with \\x01\\x01")?;
        let (key, value) = pair.split_once('=').ok_or("a key-value pair without =")?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err("a key that is not letters".into());
        }
        let allowed = |b: u8| matches!(b, 0x20..=0x7e | b'\t' | b'\r' | b'\n');
        if !value.bytes().all(allowed) {
            return Err(format!("the value of {key} has characters not allowed"));
        }
        if key == "auth" {
            if token.is_some() {
                return Err("auth appears twice".into());
            }
            token = Some(bearer(value)?);
        }
        rest = tail;
    }
    Ok(InitialResponse {
        authzid,
        token: token.ok_or("no auth=Bearer <token> pair")?,
    })
}

/// The token in a client's OAUTHBEARER initial response, or why it is
/// malformed.
pub fn initial_response_token(bytes: &[u8]) -> Result<&str, String> {
    initial_response(bytes).map(|r| r.token)
}

/// The token of an `auth` value: `Bearer` (any case), spaces, a b64token
/// (RFC 6750 §2.1).
fn bearer(value: &str) -> Result<&str, String> {
    let (scheme, token) = value.split_once(' ').ok_or("auth is not Bearer <token>")?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(format!("auth scheme {} is not Bearer", shown(scheme)));
    }
    let token = token.trim_start_matches(' ');
    let b64 = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
    let body = token.trim_end_matches('=');
    if body.is_empty() || !body.bytes().all(b64) {
        return Err("the bearer token is empty or not a b64token".into());
    }
    Ok(token)
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// `sub`: the principal's name.
    pub subject: String,
    /// `exp`: when the token, and a session it opened, ends.
    pub expires_at: SystemTime,
}

/// A compiled `oauth_bearer` rule's validation.
#[derive(Debug)]
pub struct Validator {
    mediation: Mediation,
    source: Source,
    /// `iss`, `aud`, required claims and leeway; `algorithms` is set per
    /// token from its key.
    validation: Validation,
    issuer: String,
    keys: Arc<KeySets>,
}

impl Validator {
    /// Compiles a rule: `None` for passthrough (tokens go to the broker
    /// unchecked); the error names the field (`jwks.endpoint: ...`).
    pub fn compile(spec: &OauthBearer, keys: Arc<KeySets>) -> Result<Option<Validator>, String> {
        let mediation = match Mediation::try_from(spec.mediation) {
            Ok(Mediation::Unspecified | Mediation::Passthrough) => return Ok(None),
            Ok(m) => m,
            Err(_) => {
                return Err(format!(
                    "mediation: {} is unknown to this node",
                    spec.mediation
                ));
            }
        };
        let jwks = spec
            .jwks
            .as_ref()
            .ok_or("jwks: required unless mediation is passthrough")?;
        let source = Source::compile(jwks)?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.leeway = LEEWAY;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        let rules = spec.validate.clone().unwrap_or_default();

        if !rules.issuer.is_empty() {
            validation.set_issuer(&[&rules.issuer]);
            required.push("iss");
        }
        if let Some(i) = rules.audiences.iter().position(String::is_empty) {
            return Err(format!("validate.audiences[{i}]: empty"));
        }
        // Fail closed: a rule that checks tokens names whom they are for
        // (without, any token of a shared identity provider gets in).
        if rules.issuer.is_empty() {
            return Err("validate.issuer: required unless mediation is passthrough".into());
        }
        if rules.audiences.is_empty() {
            return Err("validate.audiences: required unless mediation is passthrough".into());
        }
        validation.set_audience(&rules.audiences);
        required.push("aud");
        validation.set_required_spec_claims(&required);
        Ok(Some(Validator {
            mediation,
            source,
            validation,
            issuer: rules.issuer,
            keys,
        }))
    }

    /// `terminate` or `validate_forward`.
    pub fn mediation(&self) -> Mediation {
        self.mediation
    }

    /// Verifies a compact JWS: its signature with the JWKS key its `kid`
    /// names, `exp` and `nbf`, `iss` and `aud` when the rule names them,
    /// and a `sub`. The error is short and never quotes the token.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN {
            return Err(format!("the token is longer than {MAX_TOKEN} bytes").into());
        }
        let header = token
            .split('.')
            .next()
            .filter(|_| token.split('.').count() == 3)
            .ok_or("not a signed JWT (header.payload.signature)")?;
        let header: serde_json::Value = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .filter(serde_json::Value::is_object)
            .ok_or("the token's header is not base64url JSON")?;
        let alg = header["alg"]
            .as_str()
            .ok_or("the token's header has no alg")?;
        if alg.eq_ignore_ascii_case("none") || alg.starts_with("HS") {
            let alg = shown(alg);
            return Err(format!("alg {alg} is refused: public-key signatures only").into());
        }
        if header.get("crit").is_some() {
            return Err("the token's header has crit extensions, unknown here".into());
        }
        let alg: Algorithm = alg
            .parse()
            .map_err(|_| format!("alg {} is not supported", shown(alg)))?;
        let kid = header
            .get("kid")
            .map(|k| k.as_str().ok_or("the token's kid is not a string"));
        let key = self.keys.key(&self.source, kid.transpose()?, alg).await?;
        let mut validation = self.validation.clone();
        validation.algorithms = vec![alg];
        let data = jsonwebtoken::decode::<Raw>(token, &key.decoding, &validation)
            .map_err(|e| self.refusal(e.kind()))?;
        let subject = match data.claims.sub {
            serde_json::Value::String(s) if !s.is_empty() => s,
            _ => return Err("the token's sub claim is missing, empty or not a string".into()),
        };
        let expires_at = data
            .claims
            .exp
            .as_f64()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .and_then(|d| SystemTime::UNIX_EPOCH.checked_add(d))
            .ok_or("the token's exp claim is out of range")?;
        Ok(Claims {
            subject,
            expires_at,
        })
    }

    /// What an operator is told about a token jsonwebtoken refused.
    fn refusal(&self, kind: &ErrorKind) -> String {
        match kind {
            ErrorKind::InvalidSignature => "the signature does not verify".into(),
            ErrorKind::ExpiredSignature => "the token has expired (exp)".into(),
            ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
            ErrorKind::InvalidIssuer => {
                format!("the token's issuer (iss) is not {:?}", self.issuer)
            }
            ErrorKind::InvalidAudience => "the token's audience (aud) is not accepted".into(),
            ErrorKind::MissingRequiredClaim(claim) => format!("the token has no {claim} claim"),
            ErrorKind::InvalidClaimFormat(claim) => {
                format!("the token's {claim} claim is malformed")
            }
            ErrorKind::Base64(_) | ErrorKind::Utf8(_) | ErrorKind::Json(_) => {
                "the token's payload or signature does not decode".into()
            }
            other => format!("the token is refused ({other:?})"),
        }
    }
}

/// The claims read from a verified token (presence checked by the
/// validation).
#[derive(Deserialize, Default)]
#[serde(default)]
struct Raw {
    sub: serde_json::Value,
    exp: serde_json::Value,
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Mutex, atomic::AtomicUsize, atomic::Ordering::SeqCst};

    use jsonwebtoken::{EncodingKey, Header, jwk::Jwk};
    use serde_json::{Value, json};
    use sluice_proto::admin::v1::{Jwks, JwtValidation};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    const ISSUER: &str = "https://idp.example";

    /// A JWKS endpoint on loopback that counts the documents it serves.
    pub(crate) struct Idp {
        pub(crate) url: String,
        fetches: AtomicUsize,
        body: Mutex<String>,
        delay: Duration,
    }

    impl Idp {
        pub(crate) async fn start(body: String, delay: Duration) -> Arc<Idp> {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/jwks", listener.local_addr().unwrap());
            let (fetches, body) = (AtomicUsize::new(0), Mutex::new(body));
            let idp = Arc::new(Idp {
                url,
                fetches,
                body,
                delay,
            });
            let server = idp.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(server.clone().answer(stream));
                }
            });
            idp
        }

        async fn answer(self: Arc<Self>, mut stream: TcpStream) {
            let (mut request, mut buf) = (Vec::new(), [0u8; 1024]);
            while !request.ends_with(b"\r\n\r\n") && request.len() < 16_384 {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            self.fetches.fetch_add(1, SeqCst);
            tokio::time::sleep(self.delay).await;
            let body = self.body.lock().unwrap().clone();
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
            let _ = stream.write_all(format!("{head}{body}").as_bytes()).await;
        }

        pub(crate) fn serve(&self, body: String) {
            *self.body.lock().unwrap() = body;
        }

        pub(crate) fn fetches(&self) -> usize {
            self.fetches.load(SeqCst)
        }

        pub(crate) fn jwks(&self, cache_expiration: u32) -> Jwks {
            let endpoint = self.url.clone();
            Jwks {
                endpoint,
                timeout: 2,
                cache_expiration,
            }
        }
    }

    fn rule(idp: &Idp, cache_expiration: u32, validate: Option<JwtValidation>) -> OauthBearer {
        OauthBearer {
            mediation: Mediation::ValidateForward as i32,
            jwks: Some(idp.jwks(cache_expiration)),
            validate,
        }
    }

    /// A signing key with its kid and public JWK.
    pub(crate) struct Signer {
        kid: String,
        alg: Algorithm,
        key: EncodingKey,
        pub(crate) jwk: Value,
    }

    pub(crate) fn es256(kid: &str) -> Signer {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let key = EncodingKey::from_ec_der(&pair.serialize_der());
        let mut jwk =
            serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap()).unwrap();
        jwk["kid"] = json!(kid);
        Signer {
            kid: kid.into(),
            alg: Algorithm::ES256,
            key,
            jwk,
        }
    }

    pub(crate) fn ed25519(kid: &str) -> Signer {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let x = URL_SAFE_NO_PAD.encode(pair.public_key_raw());
        Signer {
            kid: kid.into(),
            alg: Algorithm::EdDSA,
            key: EncodingKey::from_ed_der(&pair.serialize_der()),
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid}),
        }
    }

    impl Signer {
        pub(crate) fn sign(&self, claims: &Value) -> String {
            let mut header = Header::new(self.alg);
            header.kid = Some(self.kid.clone());
            jsonwebtoken::encode(&header, claims, &self.key).unwrap()
        }
    }

    pub(crate) fn jwks(keys: &[&Signer]) -> String {
        json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string()
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn claims() -> Value {
        json!({"sub": "alice", "iss": ISSUER, "aud": "kafka", "exp": now() + 600, "iat": now()})
    }

    fn with(mut claims: Value, key: &str, value: Value) -> Value {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(key);
        } else {
            claims[key] = value;
        }
        claims
    }

    fn checked() -> Option<JwtValidation> {
        Some(JwtValidation {
            issuer: ISSUER.into(),
            audiences: vec!["kafka".into(), "connect".into()],
        })
    }

    fn validator(rule: &OauthBearer, keys: Arc<KeySets>) -> Validator {
        Validator::compile(rule, keys).unwrap().unwrap()
    }

    async fn verify(v: &Validator, token: &str) -> Result<Claims, String> {
        tokio::time::timeout(Duration::from_secs(10), v.verify(token))
            .await
            .expect("verification hangs")
            .map_err(|e| e.to_string())
    }

    async fn refused(v: &Validator, token: String, why: &str) {
        let err = verify(v, &token).await.unwrap_err();
        assert!(err.contains(why), "{err:?} does not say {why:?}");
        assert!(
            !err.contains(token.get(..24).unwrap_or("-")),
            "{err:?} quotes the token"
        );
    }

    #[test]
    fn initial_responses_are_parsed_and_malformed_ones_refused() {
        assert_eq!(
            initial_response_token(b"n,,\x01auth=Bearer abc\x01\x01"),
            Ok("abc")
        );
        let full = initial_response(b"n,a=alice,\x01host=k\x01auth=bearer  a.b-c_~+/==\x01\x01");
        assert_eq!(
            full,
            Ok(InitialResponse {
                authzid: Some("alice"),
                token: "a.b-c_~+/=="
            })
        );
        for bad in [
            &b""[..],
            b"\x01",
            b"n,,auth=Bearer abc\x01\x01",
            b"n,,\x01auth=Bearer abc\x01",
            b"n,,\x01auth=Bearer abc",
            b"n,,\x01\x01",
            b"n,,\x01host=k\x01\x01",
            b"n,,\x01auth=Basic abc\x01\x01",
            b"n,,\x01auth=Bearer \x01\x01",
            b"n,,\x01auth=Bearer a b\x01\x01",
            b"n,,\x01auth=Bearer abc\x01auth=Bearer abc\x01\x01",
            b"n,,\x01auth=Bearer abc\x01\x01\x01",
            b"n,,\x01auth=Bearer abc\x01h1=x\x01\x01",
            b"n,b=x,\x01auth=Bearer abc\x01\x01",
            b"p=tls-unique,,\x01auth=Bearer abc\x01\x01",
            b"x,,\x01auth=Bearer abc\x01\x01",
            b"n,,\x01auth=Bearer \xff\x01\x01",
        ] {
            assert!(initial_response_token(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn rules_compile_or_name_the_field() {
        let keys = Arc::new(KeySets::new());
        let compile = |mediation: i32, endpoint: Option<&str>, audience: &str| {
            let jwks = endpoint.map(|e| Jwks {
                endpoint: e.into(),
                ..Default::default()
            });
            let audiences = vec![audience.into()];
            let validate = Some(JwtValidation {
                audiences,
                issuer: "https://idp".into(),
            });
            let rule = OauthBearer {
                mediation,
                jwks,
                validate,
            };
            Validator::compile(&rule, keys.clone())
        };
        let (passthrough, terminate) = (Mediation::Passthrough as i32, Mediation::Terminate as i32);
        assert!(compile(passthrough, None, "").unwrap().is_none());
        assert!(compile(0, None, "").unwrap().is_none());
        let err = |m, endpoint, audience| compile(m, endpoint, audience).unwrap_err();
        assert!(err(terminate, None, "k").starts_with("jwks:"));
        for endpoint in ["ftp://idp/keys", "not a url", "http://"] {
            let err = err(terminate, Some(endpoint), "k");
            assert!(err.starts_with("jwks.endpoint:"), "{endpoint}: {err}");
        }
        let idp = Some("https://idp/keys");
        assert!(err(terminate, idp, "").starts_with("validate.audiences[0]:"));
        let v = compile(terminate, idp, "k").unwrap().unwrap();
        assert_eq!(v.mediation(), Mediation::Terminate);
        assert!(err(9, idp, "k").starts_with("mediation:"));
    }

    #[tokio::test]
    async fn tokens_verify_and_their_claims_are_checked() {
        let (a, ed) = (es256("a"), ed25519("ed"));
        let idp = Idp::start(jwks(&[&a, &ed]), Duration::ZERO).await;
        let v = validator(&rule(&idp, 0, checked()), Arc::new(KeySets::new()));
        let exp = now() + 600;
        let got = verify(&v, &a.sign(&with(claims(), "exp", json!(exp)))).await;
        let expires_at = SystemTime::UNIX_EPOCH + Duration::from_secs(exp);
        let subject = "alice".to_string();
        assert_eq!(
            got,
            Ok(Claims {
                subject,
                expires_at
            })
        );
        let got = verify(&v, &ed.sign(&claims())).await;
        assert_eq!(got.unwrap().subject, "alice");
        let many = with(claims(), "aud", json!(["spark", "connect"]));
        assert!(verify(&v, &a.sign(&many)).await.is_ok());
        let lately = with(claims(), "exp", json!(now() - 5));
        assert!(verify(&v, &a.sign(&lately)).await.is_ok(), "within leeway");
        assert_eq!(idp.fetches(), 1, "the document is cached");

        let refused = |claims: Value, why| refused(&v, a.sign(&claims), why);
        refused(with(claims(), "exp", json!(now() - 120)), "expired").await;
        refused(with(claims(), "exp", Value::Null), "no exp").await;
        refused(with(claims(), "nbf", json!(now() + 300)), "not valid yet").await;
        refused(with(claims(), "iss", json!("https://x")), "issuer").await;
        refused(with(claims(), "iss", Value::Null), "no iss").await;
        refused(with(claims(), "aud", json!("spark")), "audience").await;
        refused(with(claims(), "aud", json!(["spark"])), "audience").await;
        refused(with(claims(), "aud", Value::Null), "no aud").await;
        refused(with(claims(), "sub", Value::Null), "no sub").await;
        refused(with(claims(), "sub", json!("")), "sub").await;

        // Without a validate block (any issuer and audience) the rule is
        // refused: it would let any token of the key set in.
        let open = Validator::compile(&rule(&idp, 0, None), Arc::new(KeySets::new()));
        assert!(
            open.as_ref()
                .is_err_and(|e| e.starts_with("validate.issuer")),
            "{:?}",
            open.map(|_| ())
        );
    }

    #[tokio::test]
    async fn forged_and_unsigned_tokens_are_refused() {
        let (a, b) = (es256("a"), es256("b"));
        let idp = Idp::start(jwks(&[&a]), Duration::ZERO).await;
        let v = validator(&rule(&idp, 0, checked()), Arc::new(KeySets::new()));
        let good = a.sign(&claims());
        assert!(verify(&v, &good).await.is_ok());
        let refused = |token, why| refused(&v, token, why);
        // Another key claiming kid a.
        let impostor = Signer {
            kid: "a".into(),
            ..es256("x")
        };
        refused(impostor.sign(&claims()), "signature").await;
        // A changed payload.
        let parts: Vec<&str> = good.split('.').collect();
        let payload = URL_SAFE_NO_PAD.encode(with(claims(), "sub", json!("root")).to_string());
        refused(format!("{}.{payload}.{}", parts[0], parts[2]), "signature").await;
        // alg none, with and without a signature.
        let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"a"}"#);
        refused(format!("{none}.{}.", parts[1]), "alg \"none\" is refused").await;
        refused(format!("{none}.{}.{}", parts[1], parts[2]), "refused").await;
        // HS256 keyed with the public key's bytes (algorithm confusion).
        let secret = serde_json::to_vec(&a.jwk).unwrap();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("a".into());
        let hs = jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(&secret));
        refused(hs.unwrap(), "HS256").await;
        // An algorithm the key is not for (the key is P-256).
        let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let es384 = Signer {
            kid: "a".into(),
            alg: Algorithm::ES384,
            key: EncodingKey::from_ec_der(&p384.serialize_der()),
            jwk: Value::Null,
        };
        refused(es384.sign(&claims()), "not ES384").await;
        refused("abc.def".into(), "not a signed JWT").await;
        let bad_signature = format!("{}.{}.!!", parts[0], parts[1]);
        refused(bad_signature, "does not decode").await;
        refused("x".repeat(MAX_TOKEN + 1), "bytes").await;
        // A key that is not in the JWKS at all.
        refused(b.sign(&claims()), "no key \"b\"").await;
    }
}
