//! Client-authentication benchmark (a program, not a test):
//!
//! `cargo build --release --bins && cargo bench -p sluice-acceptance --bench auth`
//!
//! New connections per second through one Sluice stack, side by side in
//! one run: each login is a fresh TCP connection that authenticates (or
//! not) and then has one request answered by the broker (ApiVersions), so
//! every kind pays the same upstream dial and round trip:
//!
//! - `anonymous`: a virtual cluster with the default rule;
//! - `plain-first`: SASL/PLAIN `terminate`, every login a different
//!   principal seen for the first time (a full argon2id check each);
//! - `plain-again`: the same, one principal logging in again and again
//!   (the remembered pass: no argon2id after the first);
//! - `oauth`: OAUTHBEARER `terminate`, every login a different ES256
//!   token (minted before the clock starts) whose signature, `exp`, `iss`
//!   and `aud` the gateway checks against a JWKS served on loopback.
//!
//! `SLUICE_BENCH_LOGINS` (default 200) logins per kind (`plain-first`:
//! `SLUICE_BENCH_FIRST_LOGINS`, default 100: each is a principal the
//! control plane hashed), 8 at a time, in
//! `SLUICE_BENCH_ROUNDS` (default 3) rounds with the kinds in a rotated
//! order; prints logins/s and the proxy's CPU per 1,000 logins per kind,
//! and the ratios to anonymous.

use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_acceptance::{
    bench::{median, usage},
    identity::{AUDIENCE, ISSUER, Provider, SigningKey},
    probe,
    raw_client::{oauth_bearer, sasl_login},
    stack::{Stack, expose_virtual_cluster, two_ports},
};
use sluice_proto::admin::v1::{
    Jwks, JwtValidation, Mediation, OauthBearer, Principal, Secret, VirtualCluster,
    VirtualClusterAuthentication, VirtualSaslPlain, virtual_cluster_authentication::Method,
};
use tokio::net::TcpStream;

const KINDS: [&str; 4] = ["anonymous", "plain-first", "plain-again", "oauth"];
const CONCURRENCY: usize = 8;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How a login authenticates.
#[derive(Clone)]
enum Login {
    /// Not at all.
    Anonymous,
    /// SASL/PLAIN as this user (password `<user>-password`).
    Plain(String),
    /// OAUTHBEARER with this token.
    Bearer(String),
}

/// One login: connect, authenticate, then one ApiVersions answered by
/// the broker.
async fn login(address: &str, how: &Login) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let sasl = match how {
        Login::Anonymous => None,
        Login::Plain(user) => Some(("PLAIN", Bytes::from(format!("\0{user}\0{user}-password")))),
        Login::Bearer(token) => Some(("OAUTHBEARER", oauth_bearer(token))),
    };
    if let Some((mechanism, auth_bytes)) = sasl {
        let answer = sasl_login(&mut stream, mechanism, auth_bytes).await?;
        if answer.error_code != 0 {
            return Err(std::io::Error::other(format!(
                "{mechanism} login refused: {:?}",
                answer.error_message
            )));
        }
    }
    if probe::answered(&mut stream, Duration::from_secs(10)).await {
        Ok(())
    } else {
        Err(std::io::Error::other("ApiVersions not answered"))
    }
}

/// Logins per second for `users`, CONCURRENCY at a time.
async fn logins(address: &str, users: Vec<Login>) -> f64 {
    let started = Instant::now();
    let count = users.len();
    let rx = std::sync::Arc::new(tokio::sync::Mutex::new(users));
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let rx = rx.clone();
        let address = address.to_string();
        tasks.push(tokio::spawn(async move {
            while let Some(user) = rx.lock().await.pop() {
                login(&address, &user).await.expect("login");
            }
        }));
    }
    for task in tasks {
        task.await.expect("login task");
    }
    count as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let count = env("SLUICE_BENCH_LOGINS", 200);
    let rounds = env("SLUICE_BENCH_ROUNDS", 3);
    let first = env("SLUICE_BENCH_FIRST_LOGINS", 100);
    let mut stack = Stack::start(&[]).await;
    let gw = stack.gateway.id.clone();
    // One principal per first-time login of every round, plus the one
    // that logs in again and again.
    let principals: Vec<Principal> = (0..first * rounds + 1)
        .map(|i| Principal {
            username: format!("user-{i}"),
            password: Some(Secret {
                value: format!("user-{i}-password"),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    let ports = two_ports();
    let vc = VirtualCluster {
        destination_id: stack.backend.id.clone(),
        dns_label: "plain".into(),
        authentication: vec![VirtualClusterAuthentication {
            method: Some(Method::SaslPlain(VirtualSaslPlain {
                mediation: Mediation::Terminate as i32,
                principals,
            })),
        }],
        ..Default::default()
    };
    expose_virtual_cluster(&mut stack.admin, &gw, "plain", vc, ports).await;
    let plain = format!("127.0.0.1:{}", ports.0);
    // The OAUTHBEARER virtual cluster: tokens signed by `key`, whose
    // public half the loopback identity provider publishes.
    let key = SigningKey::new("bench-key");
    let idp = Provider::start(&[&key]).await;
    let ports = two_ports();
    let vc = VirtualCluster {
        destination_id: stack.backend.id.clone(),
        dns_label: "oauth".into(),
        authentication: vec![VirtualClusterAuthentication {
            method: Some(Method::OauthBearer(OauthBearer {
                mediation: Mediation::Terminate as i32,
                jwks: Some(Jwks {
                    endpoint: idp.url(),
                    timeout: 5,
                    cache_expiration: 3600,
                }),
                validate: Some(JwtValidation {
                    issuer: ISSUER.into(),
                    audiences: vec![AUDIENCE.into()],
                }),
            })),
        }],
        ..Default::default()
    };
    expose_virtual_cluster(&mut stack.admin, &gw, "oauth", vc, ports).await;
    let oauth = format!("127.0.0.1:{}", ports.0);
    let anonymous = stack.bootstrap();
    let ready = tokio::time::timeout(Duration::from_secs(120), async {
        while login(&plain, &Login::Plain("user-0".into())).await.is_err()
            || login(&oauth, &Login::Bearer(key.token("ready", 600)))
                .await
                .is_err()
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        ready.is_ok(),
        "the PLAIN or OAUTHBEARER virtual cluster never served a login"
    );
    let pid = stack.proxy.pid();
    println!(
        "{count} logins per kind ({first} first-time PLAIN logins), {CONCURRENCY} at a time; \
         {rounds} rounds, rotated order; \
         argon2id as the control plane sends it (19 MiB, t=2, p=1)"
    );
    let mut next_user = 1;
    let mut results: Vec<Vec<(f64, f64)>> = vec![Vec::new(); KINDS.len()];
    for round in 0..rounds {
        for k in 0..KINDS.len() {
            let kind = (round + k) % KINDS.len();
            let (address, users): (&str, Vec<Login>) = match kind {
                0 => (&anonymous, vec![Login::Anonymous; count]),
                1 => {
                    let users = (next_user..next_user + first)
                        .map(|i| Login::Plain(format!("user-{i}")))
                        .collect();
                    next_user += first;
                    (&plain, users)
                }
                2 => (&plain, vec![Login::Plain("user-0".into()); count]),
                // Minted before the clock and the CPU reading start.
                _ => (
                    &oauth,
                    (0..count)
                        .map(|i| Login::Bearer(key.token(&format!("svc-{round}-{i}"), 600)))
                        .collect(),
                ),
            };
            let n = users.len();
            let (cpu_before, _) = usage(pid);
            let rate = logins(address, users).await;
            let (cpu_after, _) = usage(pid);
            let cpu = (cpu_after - cpu_before) * 1000.0 / n as f64;
            println!(
                "round {} {:<12} {:>8.0} logins/s  CPU {:.3} s/1000 logins",
                round + 1,
                KINDS[kind],
                rate,
                cpu
            );
            results[kind].push((rate, cpu));
        }
    }
    let medians: Vec<(f64, f64)> = results
        .iter()
        .map(|r| {
            (
                median(r.iter().map(|x| x.0).collect()),
                median(r.iter().map(|x| x.1).collect()),
            )
        })
        .collect();
    println!(
        "\n{:<12} {:>12} {:>20}",
        "kind", "logins/s", "CPU s/1000 logins"
    );
    for (i, (rate, cpu)) in medians.iter().enumerate() {
        println!("{:<12} {:>12.0} {:>20.3}", KINDS[i], rate, cpu);
    }
    println!(
        "\nmedians vs anonymous: plain-first {:.2}x logins/s ({:.1}x CPU/login), \
         plain-again {:.2}x logins/s ({:.1}x CPU/login), \
         oauth {:.2}x logins/s ({:.1}x CPU/login); JWKS fetched {} time(s)",
        medians[1].0 / medians[0].0,
        medians[1].1 / medians[0].1,
        medians[2].0 / medians[0].0,
        medians[2].1 / medians[0].1,
        medians[3].0 / medians[0].0,
        medians[3].1 / medians[0].1,
        idp.fetches(),
    );
}
