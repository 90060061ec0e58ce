//! Hostile or broken peers against a real `sluice-proxy`: length
//! prefixes that claim 100 MB, half-sent frames, more connections than
//! the listener allows, a client asking for a newer ApiVersions than the
//! broker knows, a port that is busy when the proxy wants it, and a
//! backend that accepts and never answers. Each is bounded and reported
//! at its hop; nobody else's connection suffers.

use std::{
    net::TcpListener as StdListener,
    time::{Duration, Instant},
};

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader},
    protocol::{Decodable, Encodable, StrBytes},
};
use sluice_acceptance::stack::{Stack, create, expose, two_ports};
use sluice_proto::admin::v1::{BackendCluster, entity::Spec};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const WAIT: Duration = Duration::from_secs(30);

/// The proxy's peak resident memory, from /proc.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// Whether the proxy closes `s` within `within` (reads until EOF).
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut sink = [0u8; 256];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut sink)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

fn api_versions(version: i16, correlation: i32) -> Bytes {
    let mut body = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_static_str("sluice-test")))
        .encode(
            &mut body,
            ApiKey::ApiVersions.request_header_version(version),
        )
        .unwrap();
    ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("sluice-test"))
        .with_client_software_version(StrBytes::from_static_str("1"))
        .encode(&mut body, version)
        .unwrap();
    let mut out = BytesMut::new();
    out.extend_from_slice(&(body.len() as i32).to_be_bytes());
    out.extend_from_slice(&body);
    out.freeze()
}

/// Reads one response frame (body after the length prefix).
async fn read_response(s: &mut TcpStream) -> Bytes {
    let mut len = [0u8; 4];
    tokio::time::timeout(WAIT, s.read_exact(&mut len))
        .await
        .expect("an answer in time")
        .expect("an answer, not a closed connection");
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).await.unwrap();
    Bytes::from(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_of_100_mb_stalls_and_floods_are_bounded() {
    const CAP: usize = 200;
    let mut stack = Stack::start_with(
        &[],
        &[
            "--max-connections-per-listener",
            &CAP.to_string(),
            "--handshake-timeout",
            "3",
            "--idle-timeout",
            "3",
        ],
    )
    .await;
    let before = peak_rss_kib(stack.proxy.pid());

    // 201 connections to one listener (both its ports), each claiming a
    // 100 MB request and sending 64 KiB of it: the listener admits 200.
    let mut held = Vec::new();
    for i in 0..=CAP {
        let port = if i % 2 == 0 {
            stack.ports.0
        } else {
            stack.ports.1
        };
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        // The refused one may be closed before all of this is written.
        let _ = s.write_all(&100_000_000i32.to_be_bytes()).await;
        let _ = s.write_all(&[0x55; 64 * 1024]).await;
        held.push(s);
    }
    // Every stalled half-frame is closed by the handshake timeout.
    let started = Instant::now();
    for s in &mut held {
        assert!(
            closed_within(s, WAIT).await,
            "a stalled connection stayed open"
        );
    }
    eprintln!(
        "{} stalled connections closed {:?} after the last write",
        held.len(),
        started.elapsed()
    );
    let peak = peak_rss_kib(stack.proxy.pid());
    eprintln!("proxy peak RSS {before} KiB before, {peak} KiB after");
    assert!(peak < 100 * 1024, "proxy peak RSS {peak} KiB");
    // Exactly one refused at the limit, every other one timed out; both
    // counted at the listener hop.
    let limited = stack
        .wait_for_error(WAIT, |e| {
            e.hop == "listener" && e.kind == "connection_limit"
        })
        .await
        .expect("the refusal at the limit is in node status");
    let timeouts = stack
        .wait_for_error(WAIT, |e| {
            e.hop == "listener" && e.kind == "timeout" && e.count as usize == CAP
        })
        .await
        .expect("every admitted stalled connection timed out");
    assert_eq!(limited.count, 1, "{limited:?}");
    assert!(
        timeouts.last_message.contains("whole request"),
        "{}",
        timeouts.last_message
    );

    // An established client that goes quiet mid-frame is closed by the idle timeout.
    let mut quiet = TcpStream::connect(("127.0.0.1", stack.ports.0))
        .await
        .unwrap();
    quiet.write_all(&api_versions(3, 1)).await.unwrap();
    read_response(&mut quiet).await;
    quiet.write_all(&[0, 0, 0, 40, 0, 18]).await.unwrap();
    let quiet_since = Instant::now();
    assert!(closed_within(&mut quiet, WAIT).await);
    assert!(
        quiet_since.elapsed() >= Duration::from_secs(2),
        "closed before the idle timeout: {:?}",
        quiet_since.elapsed()
    );

    // And the proxy still serves.
    let mut fine = TcpStream::connect(("127.0.0.1", stack.ports.0))
        .await
        .unwrap();
    fine.write_all(&api_versions(3, 2)).await.unwrap();
    read_response(&mut fine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_newer_than_the_broker_can_retry_lower() {
    let stack = Stack::start(&[]).await;
    let mut s = TcpStream::connect(("127.0.0.1", stack.ports.0))
        .await
        .unwrap();
    // A version the proxy's Kafka library does not know (a v4 request
    // marked v9: same layout, newer number). tansu would answer it with a
    // flexible body, not as Kafka does; the proxy answers as Kafka does.
    let mut newer = api_versions(4, 11).to_vec();
    newer[6..8].copy_from_slice(&9i16.to_be_bytes());
    s.write_all(&newer).await.unwrap();
    let mut answer = read_response(&mut s).await;
    let header = ResponseHeader::decode(&mut answer, 0).unwrap();
    assert_eq!(header.correlation_id, 11);
    let body = ApiVersionsResponse::decode(&mut answer, 0).unwrap();
    assert_eq!(body.error_code, 35, "UNSUPPORTED_VERSION, as a v0 body");
    assert!(
        body.api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::ApiVersions as i16 && k.max_version >= 3),
        "the versions to retry with"
    );
    // The same connection goes on at a version the broker knows.
    s.write_all(&api_versions(3, 12)).await.unwrap();
    let mut answer = read_response(&mut s).await;
    let header = ResponseHeader::decode(&mut answer, 0).unwrap();
    assert_eq!(header.correlation_id, 12);
    let body = ApiVersionsResponse::decode(&mut answer, 3).unwrap();
    assert_eq!(body.error_code, 0);
    assert!(!body.api_keys.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_port_is_bound_once_it_frees_and_a_silent_backend_stalls_only_itself() {
    let mut stack = Stack::start(&[]).await;
    let gw = stack.gateway.id.clone();

    // A port someone else holds: the node reports it, then binds it
    // once it is free, with no configuration change.
    let busy = StdListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let other = two_ports().1;
    let backend = stack.backend.id.clone();
    let (low, high) = (busy_port.min(other), busy_port.max(other));
    expose(&mut stack.admin, &gw, &backend, "busy", (low, high)).await;
    let failed = stack
        .wait_for_error(WAIT, |e| e.hop == "listener" && e.kind == "bind_failed")
        .await
        .expect("the bind failure is in node status");
    assert!(failed.last_message.contains(&busy_port.to_string()));
    drop(busy);
    stack
        .proxy
        .wait_for(WAIT, |l| {
            l.contains(&format!("listening on 127.0.0.1:{busy_port}"))
        })
        .expect("the freed port was bound without a configuration change");

    // A backend that accepts connections and never answers.
    let silent = StdListener::bind("127.0.0.1:0").unwrap();
    let silent_address = silent.local_addr().unwrap().to_string();
    let silent_backend = create(
        &mut stack.admin,
        &gw,
        "silent",
        Spec::BackendCluster(BackendCluster {
            bootstrap_servers: vec![silent_address],
            metadata_update_interval_seconds: 1,
            ..Default::default()
        }),
    )
    .await;
    let refresh = stack
        .wait_for_error(Duration::from_secs(60), |e| {
            e.entity == silent_backend.id && e.kind == "metadata_refresh_failed"
        })
        .await
        .expect("the silent backend is reported at the backend_cluster hop");
    assert_eq!(refresh.hop, "backend_cluster");
    // Meanwhile a new virtual cluster on the good backend serves at once.
    let ports = two_ports();
    expose(&mut stack.admin, &gw, &backend, "still-fine", ports).await;
    stack
        .proxy
        .wait_for(WAIT, |l| {
            l.contains(&format!("listening on 127.0.0.1:{}", ports.1))
        })
        .expect("listening");
    let mut s = TcpStream::connect(("127.0.0.1", ports.1)).await.unwrap();
    s.write_all(&api_versions(3, 1)).await.unwrap();
    read_response(&mut s).await;
    drop(silent);
}
