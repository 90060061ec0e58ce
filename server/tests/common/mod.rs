//! Test harness: runs the real `sluice-server` binary on a temp data dir and
//! a free loopback port, and builds valid entities of every kind.

#![allow(dead_code)]

pub mod fixtures;
pub mod node;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use sluice_proto::admin::v1::admin_service_client::AdminServiceClient;
use tonic::{
    Request, Status,
    metadata::MetadataValue,
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
};

/// The admin client type tests use.
pub type Admin = AdminServiceClient<InterceptedService<Channel, Bearer>>;

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(pub Option<String>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.0 {
            let value: MetadataValue<_> = format!("Bearer {token}")
                .parse()
                .map_err(|_| Status::internal("bad token"))?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

/// Runs `sluice-server` with `args` and returns its stdout.
pub fn run_cli(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice-server"))
        .args(args)
        .output()
        .expect("run sluice-server");
    assert!(
        out.status.success(),
        "sluice-server {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Creates an admin token in `data_dir`.
pub fn create_token(data_dir: &Path) -> String {
    let out = run_cli(&[
        "token",
        "create",
        "--name",
        "test",
        "--data-dir",
        data_dir.to_str().unwrap(),
    ]);
    out.trim().to_string()
}

/// A running server process.
pub struct Server {
    child: Child,
    /// The admin API address (`127.0.0.1:PORT`).
    pub addr: String,
    /// The sync endpoint address (`127.0.0.1:PORT`).
    pub sync_addr: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Whether it serves TLS.
    pub tls: bool,
}

impl Server {
    /// Starts a server on `data_dir` with extra flags, waiting until both
    /// endpoints listen.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice-server"))
            .args([
                "serve",
                "--admin-listen",
                "127.0.0.1:0",
                "--sync-listen",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("SLUICE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sluice-server");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[server] {line}");
                for (marker, which) in [
                    ("admin API listening on ", "admin"),
                    ("sync endpoint listening on ", "sync"),
                ] {
                    if let Some(rest) = line.split(marker).nth(1) {
                        let url = rest
                            .split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_string();
                        let _ = tx.send((which, url));
                    }
                }
            }
        });
        let (mut url, mut sync_url) = (None, None);
        while url.is_none() || sync_url.is_none() {
            let (which, found) = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("server did not report its addresses within 60 s");
            if which == "admin" {
                url = Some(found)
            } else {
                sync_url = Some(found)
            }
        }
        let url = url.unwrap_or_default();
        let strip = |u: &str| {
            u.trim_start_matches("https://")
                .trim_start_matches("http://")
                .to_string()
        };
        Server {
            child,
            tls: url.starts_with("https://"),
            addr: strip(&url),
            sync_addr: strip(&sync_url.unwrap_or_default()),
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// A client with `token` (None: no authorization metadata).
    pub async fn client(&self, token: Option<&str>) -> Admin {
        let channel = self.channel(None).await;
        AdminServiceClient::with_interceptor(channel, Bearer(token.map(str::to_string)))
    }

    /// A raw channel, trusting `ca` (PEM) when TLS is on.
    pub async fn channel(&self, ca: Option<&str>) -> Channel {
        let scheme = if self.tls { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{}", self.addr)).unwrap();
        if let Some(ca) = ca {
            endpoint = endpoint
                .tls_config(
                    ClientTlsConfig::new()
                        .ca_certificate(Certificate::from_pem(ca))
                        .domain_name("localhost"),
                )
                .unwrap();
        }
        endpoint.connect().await.expect("connect to admin API")
    }

    /// Stops the server with SIGTERM and waits for it to exit.
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        assert!(exit.success(), "server exited with {exit}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh data dir, a token and a running server.
pub async fn start() -> (tempfile::TempDir, Server, Admin, String) {
    let dir = tempfile::tempdir().unwrap();
    let token = create_token(dir.path());
    let server = Server::start(dir.path(), &[]);
    let client = server.client(Some(&token)).await;
    (dir, server, client, token)
}
