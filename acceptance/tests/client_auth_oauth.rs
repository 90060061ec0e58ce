//! OAUTHBEARER client authentication end to end: tokens signed with keys
//! the test generates (ES256), their public halves served as a JWKS by a
//! real HTTP server on loopback, confluent-kafka (librdkafka) minting its
//! tokens in `oauth_cb` (PyJWT), a real sluice-proxy, and tansu behind it.
//! The gateway checks each token (`terminate`): good ones get in as their
//! `sub`; a wrong audience, an expired token, a forged signature and a key
//! the provider withdrew are refused with the gateway's message and
//! counted; a rotated key is fetched; sessions end at the token's `exp`
//! unless the client re-authenticates (KIP-368) as the same `sub`.
//!
//! tansu takes no OAUTHBEARER, so the relayed mediations (validate_forward,
//! passthrough) can only be seen refused by the broker here; their gateway
//! checks are covered by the proxy's unit tests.

use std::time::{Duration, SystemTime};

use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, MetadataRequest};
use sluice_acceptance::{
    auth::{
        PROXY_LOG, Served, WAIT, assert_served, auth_failed_hook, ever_connected_as,
        expect_auth_failure, expect_connected, refused, report, rule, serve,
    },
    clients,
    identity::{AUDIENCE, ISSUER, Provider, SigningKey, now_secs},
    raw_client,
    stack::Stack,
};
use sluice_proto::admin::v1::{
    Jwks, JwtValidation, Mediation, OauthBearer, VirtualClusterAuthentication,
    virtual_cluster_authentication::Method,
};
use tokio::net::TcpStream;

/// The proxy's connection log, and its re-authentication log.
const OAUTH_LOG: [&str; 2] = [
    "--log",
    "info,sluice_proxy::conn=debug,sluice_proxy::auth=debug",
];

/// `oauth_bearer` checking tokens against `jwks` with the test's issuer
/// and audience.
fn oauth(mediation: Mediation, jwks: &Provider) -> VirtualClusterAuthentication {
    rule(Method::OauthBearer(OauthBearer {
        mediation: mediation as i32,
        jwks: Some(Jwks {
            endpoint: jwks.url(),
            timeout: 5,
            cache_expiration: 3600,
        }),
        validate: Some(JwtValidation {
            issuer: ISSUER.into(),
            audiences: vec![AUDIENCE.into(), "other-gateway".into()],
        }),
    }))
}

/// confluent_sasl.py arguments for OAUTHBEARER with `key` as `sub`.
fn bearer<'a>(key_file: &'a str, key: &'a SigningKey, sub: &'a str) -> Vec<&'a str> {
    vec!["--oauth-key", key_file, "--kid", &key.kid, "--sub", sub]
}

fn confluent(args: &[&[&str]]) -> (bool, String) {
    clients::try_run("python3", "confluent_sasl.py", &args.concat())
}

/// The message every refused token gets, naming the virtual cluster.
fn told(label: &str) -> String {
    format!("Authentication failed: invalid credentials for virtual cluster {label:?}")
}

/// Test 1: good tokens in, bad ones out, each refusal counted and heard
/// by an event hook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauthbearer_terminate_admits_good_tokens_and_refuses_bad_ones() {
    let mut stack = Stack::start_with(&["oauth-rt"], &PROXY_LOG).await;
    let mut hook = auth_failed_hook(&mut stack).await;
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::new("key-1");
    let key_file = key.write(dir.path());
    let key_file = key_file.to_str().unwrap();
    let idp = Provider::start(&[&key]).await;
    let backend = stack.backend.id.clone();
    let s = serve(
        &mut stack,
        "oauth-a",
        &backend,
        vec![oauth(Mediation::Terminate, &idp)],
        None,
    )
    .await;

    let out = clients::run(
        "python3",
        "confluent_sasl.py",
        &[
            &["roundtrip", &s.bootstrap][..],
            &bearer(key_file, &key, "svc-orders"),
            &["--topic", "oauth-rt", "--group", "g-oauth"],
        ]
        .concat(),
    );
    assert_served(&out, &s);
    assert_eq!(report(&out)["protocol"], "SASL_PLAINTEXT", "{out}");
    expect_connected(&stack, &s.vc, "User:svc-orders", "OAUTHBEARER");
    assert!(idp.fetches() >= 1, "the JWKS was never fetched");

    // Wrong audience, wrong issuer, expired: the client hears the
    // gateway's message; node status says which claim was wrong.
    let cases: [(&str, &[&str], &str); 3] = [
        (
            "svc-wrong-aud",
            &["--aud", "someone-else"],
            "audience (aud) is not accepted",
        ),
        (
            "svc-wrong-iss",
            &["--iss", "https://evil.example"],
            "issuer (iss) is not",
        ),
        ("svc-expired", &["--lifetime", "-120"], "has expired (exp)"),
    ];
    for (sub, claims, why) in cases {
        let (ok, out) = confluent(&[
            &["metadata", &s.bootstrap],
            &bearer(key_file, &key, sub),
            claims,
        ]);
        assert!(!ok, "{sub} was served: {out}");
        let error = report(&out)["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(error.contains(&told("oauth-a")), "{sub}: {error}");
        let counted = stack
            .wait_for_error(WAIT, |e| {
                e.hop == "auth"
                    && e.entity == s.vc.id
                    && e.detail == "OAUTHBEARER"
                    && e.last_message.contains(why)
            })
            .await;
        assert!(counted.is_some(), "{sub}: no hop=auth error saying {why:?}");
        assert!(
            !ever_connected_as(&stack, &s.vc, &format!("User:{sub}")),
            "{sub} was admitted"
        );
    }

    // A forged token: the published kid, signed by another key.
    let forger = SigningKey::new("key-1");
    let forged_dir = dir.path().join("forger");
    std::fs::create_dir(&forged_dir).unwrap();
    let forged_file = forger.write(&forged_dir);
    let error = refused(
        "python3",
        "confluent_sasl.py",
        &[
            &["metadata", &s.bootstrap][..],
            &bearer(forged_file.to_str().unwrap(), &forger, "svc-forged"),
        ]
        .concat(),
    );
    assert!(error.contains(&told("oauth-a")), "{error}");
    let counted = expect_auth_failure(&mut stack, &s.vc, "OAUTHBEARER").await;
    assert!(
        !counted.last_message.contains("eyJ"),
        "a token in node status: {counted:?}"
    );
    assert!(
        !ever_connected_as(&stack, &s.vc, "User:svc-forged"),
        "a forged token got in"
    );

    let event = tokio::time::timeout(WAIT, async {
        loop {
            let e = hook.next().await.json();
            if e["event"] == "auth_failed" {
                return e;
            }
        }
    })
    .await
    .expect("no auth_failed event reached the hook");
    assert_eq!(
        event["entity"]["key"],
        format!("{}/OAUTHBEARER", s.vc.id),
        "{event}"
    );
    assert!(
        !event.to_string().contains("eyJ"),
        "a token in the event: {event}"
    );
}

/// Test 2: the provider rotates its key: a token with the new `kid` makes
/// the gateway fetch the JWKS again (at most once per 10 s per endpoint),
/// and tokens signed with the withdrawn key stop working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauthbearer_follows_a_key_rotation() {
    let mut stack = Stack::start_with(&[], &PROXY_LOG).await;
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (SigningKey::new("2026-old"), SigningKey::new("2026-new"));
    let (old_file, new_file) = (old.write(dir.path()), new.write(dir.path()));
    let (old_file, new_file) = (old_file.to_str().unwrap(), new_file.to_str().unwrap());
    let idp = Provider::start(&[&old]).await;
    let backend = stack.backend.id.clone();
    let s = serve(
        &mut stack,
        "oauth-rotate",
        &backend,
        vec![oauth(Mediation::Terminate, &idp)],
        None,
    )
    .await;
    let metadata = |file: &str, key: &SigningKey, sub: &str| {
        confluent(&[&["metadata", &s.bootstrap], &bearer(file, key, sub)])
    };

    let (ok, out) = metadata(old_file, &old, "svc-a");
    assert!(ok, "the old key before rotation: {out}");
    let fetched = idp.fetches();
    assert!(fetched >= 1, "the JWKS was never fetched");

    idp.publish(&[&new]);
    // The new kid is unknown to the gateway's cached set: it refetches
    // (once the 10 s refetch floor since the first fetch has passed).
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let served = loop {
        let (ok, out) = metadata(new_file, &new, "svc-b");
        if ok || std::time::Instant::now() >= deadline {
            break (ok, out);
        }
    };
    assert!(served.0, "the rotated key was never accepted: {}", served.1);
    assert!(idp.fetches() > fetched, "no refetch for the new kid");
    expect_connected(&stack, &s.vc, "User:svc-b", "OAUTHBEARER");

    // The refetched set no longer has the old key.
    let (ok, out) = metadata(old_file, &old, "svc-c");
    assert!(!ok, "a token signed with a withdrawn key was served: {out}");
    assert!(!ever_connected_as(&stack, &s.vc, "User:svc-c"));
}

/// Reads node status until `vc` has an auth error whose message contains
/// `needle`.
async fn expect_auth_message(stack: &mut Stack, s: &Served, needle: &str) {
    let found = stack
        .wait_for_error(WAIT, |e| {
            e.hop == "auth" && e.entity == s.vc.id && e.last_message.contains(needle)
        })
        .await;
    assert!(
        found.is_some(),
        "no hop=auth error for {} saying {needle:?}",
        s.vc.name
    );
}

/// Test 3: a session lasts until its token's `exp`. librdkafka
/// re-authenticates on its open connections (KIP-368) before then and
/// keeps producing; a client that does not is closed at its first
/// request after `exp`; re-authenticating as another `sub` is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauthbearer_sessions_end_at_exp_unless_renewed() {
    let mut stack = Stack::start_with(&["oauth-steady"], &OAUTH_LOG).await;
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::new("session-key");
    let key_file = key.write(dir.path());
    let key_file = key_file.to_str().unwrap();
    let idp = Provider::start(&[&key]).await;
    let backend = stack.backend.id.clone();
    let s = serve(
        &mut stack,
        "oauth-session",
        &backend,
        vec![oauth(Mediation::Terminate, &idp)],
        None,
    )
    .await;
    let renewed = |stack: &Stack, principal: &str| {
        let vc_field = format!("virtual_cluster=\"{}\"", s.vc.id);
        let principal_field = format!("principal={principal} ");
        stack.proxy.count_matching(|l| {
            l.contains("session renewed") && l.contains(&vc_field) && l.contains(&principal_field)
        })
    };

    // 5-second tokens for 12 seconds: every record is delivered, over
    // sessions renewed on the open connections.
    let out = clients::run(
        "python3",
        "confluent_sasl.py",
        &[
            &["steady", &s.bootstrap][..],
            &bearer(key_file, &key, "svc-steady"),
            &[
                "--lifetime",
                "5",
                "--seconds",
                "12",
                "--topic",
                "oauth-steady",
            ],
        ]
        .concat(),
    );
    let r = report(&out);
    assert_eq!(r["failed"], 0, "{out}");
    assert_eq!(r["delivered"], r["sent"], "{out}");
    assert!(
        r["tokens"].as_u64().unwrap_or(0) >= 2,
        "no token refresh: {out}"
    );
    assert!(
        renewed(&stack, "User:svc-steady") >= 2,
        "librdkafka's sessions were not renewed on the gateway: {out}"
    );
    assert!(
        stack
            .proxy
            .count_matching(|l| l.contains("ended at its token's exp") && l.contains(&s.vc.id))
            == 0,
        "a renewing client's session was ended"
    );

    // A client that never re-authenticates: told the session lifetime,
    // served until exp, closed at its first request after it.
    let lifetime = 3;
    let exp = now_secs() + lifetime;
    let token = key.token_with(serde_json::json!({
        "sub": "svc-raw", "iss": ISSUER, "aud": AUDIENCE, "exp": exp,
    }));
    let mut raw = TcpStream::connect(&s.bootstrap).await.unwrap();
    let answer = raw_client::sasl_login(&mut raw, "OAUTHBEARER", raw_client::oauth_bearer(&token))
        .await
        .unwrap();
    assert_eq!(answer.error_code, 0, "{answer:?}");
    assert!(
        (1..=lifetime * 1000).contains(&answer.session_lifetime_ms),
        "session_lifetime_ms {} for a token {lifetime} s from exp",
        answer.session_lifetime_ms
    );
    let metadata = MetadataRequest::default();
    raw_client::exchange(&mut raw, ApiKey::Metadata, 9, &metadata)
        .await
        .expect("a request within the session was not answered");
    // Wait for the clock to pass exp: that is the event under test.
    let past_exp = SystemTime::UNIX_EPOCH + Duration::from_secs(exp as u64 + 1);
    if let Ok(left) = past_exp.duration_since(SystemTime::now()) {
        tokio::time::sleep(left).await;
    }
    let after = tokio::time::timeout(
        Duration::from_secs(10),
        raw_client::exchange(
            &mut raw,
            ApiKey::ApiVersions,
            3,
            &ApiVersionsRequest::default(),
        ),
    )
    .await
    .expect("the connection neither answered nor closed");
    assert!(
        after.is_err(),
        "a request after the session's exp was answered"
    );
    expect_auth_message(&mut stack, &s, "ended at its token's exp").await;

    // Re-authentication (KIP-368) as another sub on an open connection:
    // refused, the client told why, and counted. (librdkafka does this
    // when its token callback switches sub, but whether its re-auth or the
    // session's exp comes first depends on the machine's load.)
    let first = key.token("svc-first", 600);
    let mut raw = TcpStream::connect(&s.bootstrap).await.unwrap();
    let answer = raw_client::sasl_login(&mut raw, "OAUTHBEARER", raw_client::oauth_bearer(&first))
        .await
        .unwrap();
    assert_eq!(answer.error_code, 0, "{answer:?}");
    let again = raw_client::sasl_login(
        &mut raw,
        "OAUTHBEARER",
        raw_client::oauth_bearer(&key.token("svc-first", 600)),
    )
    .await
    .expect("a same-sub re-authentication was not answered");
    assert_eq!(again.error_code, 0, "same sub: {again:?}");
    let other = raw_client::sasl_login(
        &mut raw,
        "OAUTHBEARER",
        raw_client::oauth_bearer(&key.token("svc-second", 600)),
    )
    .await
    .expect("the refusal was not answered");
    assert_eq!(
        other.error_code, 58,
        "SASL_AUTHENTICATION_FAILED: {other:?}"
    );
    assert!(
        other
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("re-authentication must keep the principal")),
        "{other:?}"
    );
    expect_auth_message(&mut stack, &s, "re-authentication as \"svc-second\"").await;
}

/// Test 4: validate_forward in front of a broker without OAUTHBEARER
/// (tansu): the misconfiguration is named at the auth hop, not hidden.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_forward_to_a_broker_without_oauthbearer_is_named() {
    let mut stack = Stack::start_with(&[], &PROXY_LOG).await;
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::new("fwd-key");
    let key_file = key.write(dir.path());
    let idp = Provider::start(&[&key]).await;
    let backend = stack.backend.id.clone();
    let s = serve(
        &mut stack,
        "oauth-forward",
        &backend,
        vec![oauth(Mediation::ValidateForward, &idp)],
        None,
    )
    .await;
    let (ok, out) = confluent(&[
        &["metadata", &s.bootstrap],
        &bearer(key_file.to_str().unwrap(), &key, "svc-fwd"),
    ]);
    assert!(!ok, "served without the broker taking OAUTHBEARER: {out}");
    expect_auth_message(&mut stack, &s, "the broker does not accept OAUTHBEARER").await;
    assert!(!ever_connected_as(&stack, &s.vc, "User:svc-fwd"));
}
