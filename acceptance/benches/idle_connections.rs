//! Idle-connection benchmark (a program, not a test):
//!
//! `cargo bench -p sluice-acceptance --bench idle_connections`
//!
//! Starts tansu, `sluice-server` and `sluice-proxy`, opens 1,000 client
//! connections through one listener's bootstrap port (each answered one
//! ApiVersions, so each is through to the broker), then prints how long
//! that took and the proxy's resident memory with them all open.

use std::time::Instant;

use sluice_acceptance::stack::Stack;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const CONNECTIONS: usize = 1000;

/// ApiVersions v0 (header v1, client id "bench"), correlation id 1.
const API_VERSIONS: [u8; 19] = [
    0, 0, 0, 15, 0, 18, 0, 0, 0, 0, 0, 1, 0, 5, b'b', b'e', b'n', b'c', b'h',
];

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

#[tokio::main]
async fn main() {
    let stack = Stack::start(&[]).await;
    let before = rss_mib(stack.proxy.pid());
    let start = Instant::now();
    let mut open = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let mut s = TcpStream::connect(("127.0.0.1", stack.ports.0))
            .await
            .expect("connect");
        s.write_all(&API_VERSIONS).await.expect("send");
        let mut len = [0u8; 4];
        s.read_exact(&mut len).await.expect("answer");
        let mut body = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
        s.read_exact(&mut body).await.expect("answer body");
        open.push(s);
    }
    let took = start.elapsed();
    let after = rss_mib(stack.proxy.pid());
    println!(
        "sluice idle-connection benchmark: {CONNECTIONS} client connections through one listener"
    );
    println!(
        "  time to open and answer all: {:.2} s ({:.2} ms each)",
        took.as_secs_f64(),
        took.as_secs_f64() * 1e3 / CONNECTIONS as f64
    );
    println!(
        "  proxy RSS: {before:.1} MiB before, {after:.1} MiB with {CONNECTIONS} open (target <= 100 MB)"
    );
    drop(open);
}
