//! Runs the real `sluice-server` binary on a data dir and free loopback
//! ports (port 0, read back from its log), with admin clients for it.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use crate::process::{Process, word_after};

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

/// Runs the `sluice-server` at `bin` with `args` and returns its stdout.
pub fn run_cli(bin: &Path, args: &[&str]) -> String {
    let out = Command::new(bin)
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
pub fn create_token(bin: &Path, data_dir: &Path) -> String {
    let out = run_cli(
        bin,
        &[
            "token",
            "create",
            "--name",
            "test",
            "--data-dir",
            data_dir.to_str().unwrap(),
        ],
    );
    out.trim().to_string()
}

/// A fresh data dir, an admin token for it and the `sluice-server` of
/// this workspace running on it (free loopback ports).
pub fn start_fresh() -> (tempfile::TempDir, Server, String) {
    let bin = crate::workspace_bin("sluice-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let token = create_token(&bin, dir.path());
    let server = Server::start(&bin, dir.path(), &[]);
    (dir, server, token)
}

/// Every gateway the server holds (the test fails if it cannot say).
pub async fn gateways(admin: &mut Admin) -> Vec<sluice_proto::admin::v1::Entity> {
    admin
        .list_entities(sluice_proto::admin::v1::ListEntitiesRequest {
            kind: sluice_proto::admin::v1::Kind::Gateway as i32,
            ..Default::default()
        })
        .await
        .expect("list gateways")
        .into_inner()
        .entities
}

/// A running server process.
pub struct Server {
    process: Process,
    /// The admin API address (`127.0.0.1:PORT`).
    pub addr: String,
    /// The sync endpoint address (`127.0.0.1:PORT`).
    pub sync_addr: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Whether the admin API serves TLS.
    pub tls: bool,
}

impl Server {
    /// Starts a server on `data_dir` with extra flags, waiting until both
    /// endpoints listen.
    pub fn start(bin: &Path, data_dir: &Path, extra: &[&str]) -> Server {
        let mut command = Command::new(bin);
        command.arg("serve");
        // Free ports unless the caller names them (say, to restart a server
        // on the port its nodes know).
        for flag in ["--admin-listen", "--sync-listen"] {
            if !extra.contains(&flag) {
                command.args([flag, "127.0.0.1:0"]);
            }
        }
        command
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("SLUICE_LOG", "info");
        let process = Process::spawn(command, "server");
        let wait = |marker: &str| {
            let line = process
                .wait_for(Duration::from_secs(60), |l| l.contains(marker))
                .unwrap_or_else(|| panic!("sluice-server did not log {marker:?} within 60 s"));
            word_after(&line, marker).unwrap_or_default().to_string()
        };
        let url = wait("admin API listening on ");
        let sync_url = wait("sync endpoint listening on ");
        let strip = |u: &str| {
            u.trim_start_matches("https://")
                .trim_start_matches("http://")
                .to_string()
        };
        Server {
            tls: url.starts_with("https://"),
            addr: strip(&url),
            sync_addr: strip(&sync_url),
            data_dir: data_dir.to_path_buf(),
            process,
        }
    }

    /// Waits (at most `timeout`) for a log line that `matches`.
    pub fn wait_for_log(
        &self,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Option<String> {
        self.process.wait_for(timeout, matches)
    }

    /// How many of the server's log lines so far match.
    pub fn count_log(&self, matches: impl Fn(&str) -> bool) -> usize {
        self.process.count_matching(matches)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// A client with `token` (None: no authorization metadata).
    pub async fn client(&self, token: Option<&str>) -> Admin {
        let channel = self.channel(None).await;
        AdminServiceClient::with_interceptor(channel, Bearer(token.map(str::to_string)))
    }

    /// A raw channel, trusting `ca` (PEM) when TLS is on.
    pub async fn channel(&self, ca: Option<&str>) -> Channel {
        let scheme = if self.tls { "https" } else { "http" };
        // Every admin call of a test is bounded: a hung server fails the
        // test instead of hanging the suite.
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{}", self.addr))
            .unwrap()
            .timeout(Duration::from_secs(120));
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
    pub fn stop(self) {
        self.process.terminate();
    }
}
