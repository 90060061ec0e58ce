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
//!   (the remembered pass: no argon2id after the first).
//!
//! `SLUICE_BENCH_LOGINS` (default 200) logins per kind (`plain-first`:
//! `SLUICE_BENCH_FIRST_LOGINS`, default 100: each is a principal the
//! control plane hashed), 8 at a time, in
//! `SLUICE_BENCH_ROUNDS` (default 3) rounds with the kinds in a rotated
//! order; prints logins/s and the proxy's CPU per 1,000 logins per kind,
//! and the ratios to anonymous.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
        SaslHandshakeRequest,
    },
    protocol::{Decodable, Encodable, StrBytes},
};
use sluice_acceptance::{
    bench::{median, usage},
    probe,
    stack::{Stack, expose_virtual_cluster, two_ports},
};
use sluice_proto::admin::v1::{
    Mediation, Principal, Secret, VirtualCluster, VirtualClusterAuthentication, VirtualSaslPlain,
    virtual_cluster_authentication::Method,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const KINDS: [&str; 3] = ["anonymous", "plain-first", "plain-again"];
const CONCURRENCY: usize = 8;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn exchange<T: Encodable>(
    stream: &mut TcpStream,
    key: ApiKey,
    version: i16,
    body: &T,
) -> std::io::Result<Bytes> {
    let mut out = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("bench")))
        .encode(&mut out, key.request_header_version(version))
        .and_then(|()| body.encode(&mut out, version))
        .map_err(std::io::Error::other)?;
    stream.write_all(&(out.len() as i32).to_be_bytes()).await?;
    stream.write_all(&out).await?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let mut answer = vec![0u8; i32::from_be_bytes(len).clamp(0, 1 << 20) as usize];
    stream.read_exact(&mut answer).await?;
    let mut answer = Bytes::from(answer);
    ResponseHeader::decode(&mut answer, key.response_header_version(version))
        .map_err(std::io::Error::other)?;
    Ok(answer)
}

/// One login: connect, authenticate with PLAIN when `user` is given, then
/// one ApiVersions answered by the broker.
async fn login(address: &str, user: Option<&str>) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    if let Some(user) = user {
        exchange(
            &mut stream,
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        )
        .await?;
        let mut answer = exchange(
            &mut stream,
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default()
                .with_auth_bytes(Bytes::from(format!("\0{user}\0{user}-password"))),
        )
        .await?;
        let answer =
            SaslAuthenticateResponse::decode(&mut answer, 2).map_err(std::io::Error::other)?;
        if answer.error_code != 0 {
            return Err(std::io::Error::other(format!(
                "login as {user} refused: {:?}",
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

/// Logins per second for `users` (None: anonymous), CONCURRENCY at a time.
async fn logins(address: &str, users: Vec<Option<String>>) -> f64 {
    let started = Instant::now();
    let count = users.len();
    let rx = std::sync::Arc::new(tokio::sync::Mutex::new(users));
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let rx = rx.clone();
        let address = address.to_string();
        tasks.push(tokio::spawn(async move {
            while let Some(user) = rx.lock().await.pop() {
                login(&address, user.as_deref()).await.expect("login");
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
    let anonymous = stack.bootstrap();
    let ready = tokio::time::timeout(Duration::from_secs(120), async {
        while login(&plain, Some("user-0")).await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        ready.is_ok(),
        "the PLAIN virtual cluster never served a login"
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
            let (address, users): (&str, Vec<Option<String>>) = match kind {
                0 => (&anonymous, vec![None; count]),
                1 => {
                    let users = (next_user..next_user + first)
                        .map(|i| Some(format!("user-{i}")))
                        .collect();
                    next_user += first;
                    (&plain, users)
                }
                _ => (&plain, vec![Some("user-0".to_string()); count]),
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
         plain-again {:.2}x logins/s ({:.1}x CPU/login)",
        medians[1].0 / medians[0].0,
        medians[1].1 / medians[0].1,
        medians[2].0 / medians[0].0,
        medians[2].1 / medians[0].1,
    );
}
