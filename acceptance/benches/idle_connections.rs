//! Idle-connection benchmark (a program, not a test):
//!
//! `cargo bench -p sluice-acceptance --bench idle_connections`
//!
//! Starts tansu, `sluice-server` and `sluice-proxy`, opens 10,000 client
//! connections (`SLUICE_BENCH_CONNECTIONS`) through one listener's
//! bootstrap port (each answered one ApiVersions, so each is through to the
//! broker), then prints how long that took and the proxy's resident memory
//! with them all open (goal: at most 200 MB). The open-file limit is raised
//! first (the proxy holds two descriptors per client: its own and the
//! broker's); where it cannot be raised enough, fewer connections are
//! opened and the output says so.

use std::time::Instant;

use sluice_acceptance::stack::Stack;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Connections opened unless `SLUICE_BENCH_CONNECTIONS` says otherwise.
const CONNECTIONS: usize = 10_000;
/// Descriptors a process needs besides its connections.
const SPARE_FDS: u64 = 1024;

/// Raises this process's open-file limit (inherited by the processes it
/// starts) as far as allowed; the soft limit reached.
fn raise_fd_limit(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        let raised = libc::rlimit {
            rlim_cur: wanted.max(limit.rlim_cur),
            rlim_max: wanted.max(limit.rlim_max),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return raised.rlim_cur;
        }
        // Not allowed above the hard limit: up to it.
        let capped = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &capped) == 0 {
            return capped.rlim_cur;
        }
        limit.rlim_cur
    }
}

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
    let wanted = sluice_acceptance::bench::setting("SLUICE_BENCH_CONNECTIONS", CONNECTIONS);
    let limit = raise_fd_limit(2 * wanted as u64 + SPARE_FDS);
    let connections = wanted.min(((limit.saturating_sub(SPARE_FDS)) / 2) as usize);
    if connections < wanted {
        println!("open-file limit {limit}: {connections} connections instead of {wanted}");
    }
    let max = (connections + 100).to_string();
    let stack = Stack::start_with(&[], &["--max-connections-per-listener", &max]).await;
    let before = rss_mib(stack.proxy.pid());
    let start = Instant::now();
    let mut open = Vec::with_capacity(connections);
    for _ in 0..connections {
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
        "sluice idle-connection benchmark: {connections} client connections through one listener"
    );
    println!(
        "  time to open and answer all: {:.2} s ({:.2} ms each)",
        took.as_secs_f64(),
        took.as_secs_f64() * 1e3 / connections as f64
    );
    println!(
        "  proxy RSS: {before:.1} MiB before, {after:.1} MiB with {connections} open ({:.1} KiB each; goal <= 200 MB)",
        (after - before) * 1024.0 / connections as f64
    );
    drop(open);
}
