//! A real tansu broker (memory storage) on a loopback address.

use std::{path::PathBuf, process::Command, time::Duration};

use crate::process::Process;

/// A free port on `host` (bound, read back, released), never one this
/// process handed out before: tests in one binary run in parallel and
/// each hands its ports to a process that binds them later, so the same
/// port must not go to two of them.
pub fn free_port(host: &str) -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    // Hold every candidate until one is new, so the OS offers another.
    let mut held = Vec::new();
    for _ in 0..1000 {
        let listener = std::net::TcpListener::bind((host, 0)).expect("bind a free port");
        let port = listener.local_addr().expect("addr").port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
        held.push(listener);
    }
    panic!("no new free port on {host} after 1000 tries");
}

/// The tansu binary (`scripts/install-deps kafka` installs it).
pub fn tansu_bin() -> PathBuf {
    let home = PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo/bin/tansu");
    if home.is_file() {
        return home;
    }
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("tansu"))
                .find(|c| c.is_file())
        })
        .expect("tansu is not installed: run scripts/install-deps kafka")
}

/// A running broker.
pub struct Tansu {
    _process: Process,
    /// `host:port` clients use.
    pub address: String,
}

impl Tansu {
    /// Starts a broker on `host` (a loopback address) and waits until it accepts.
    pub fn start(host: &str) -> Tansu {
        Self::start_advertised(host, None)
    }

    /// Starts a broker on `host` that tells clients to reach it at
    /// `advertised` (`host:port`, e.g. an L4 proxy in front of it).
    pub fn start_advertised(host: &str, advertised: Option<&str>) -> Tansu {
        let port = free_port(host);
        let url = format!("tcp://{host}:{port}");
        let advertised = advertised.map_or_else(|| url.clone(), |a| format!("tcp://{a}"));
        let mut command = Command::new(tansu_bin());
        command
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
            ])
            .args(["--storage-engine", "memory://tansu/"]);
        Self::wait(Process::spawn(command, "tansu"), format!("{host}:{port}"))
    }

    /// Starts a broker that requires SASL/SCRAM (`--authentication`) and
    /// knows `user` with `password` (SCRAM-SHA-512), with `topics` made.
    /// Users persist only in tansu's sqlite storage (the `libsql` feature,
    /// which `scripts/install-deps` installs), kept in `dir`; they are
    /// created by a first, unauthenticated run on the same file.
    pub fn start_scram(
        host: &str,
        dir: &std::path::Path,
        (user, password): (&str, &str),
        topics: &[&str],
    ) -> Tansu {
        let setup = Self::spawn_sqlite(host, dir, false);
        for topic in topics {
            setup.create_topic(topic, 1);
        }
        let out = Command::new(tansu_bin())
            .args(["user", "create", "--mechanism", "scram512"])
            .args(["--broker", &format!("tcp://{}", setup.address)])
            .args([user, password])
            .output()
            .expect("tansu user create");
        assert!(
            out.status.success(),
            "tansu user create failed (is tansu built with libsql? scripts/install-deps): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        drop(setup);
        Self::spawn_sqlite(host, dir, true)
    }

    fn spawn_sqlite(host: &str, dir: &std::path::Path, authentication: bool) -> Tansu {
        let port = free_port(host);
        let url = format!("tcp://{host}:{port}");
        let mut command = Command::new(tansu_bin());
        command
            .current_dir(dir)
            .args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://tansu.db"]);
        if authentication {
            command.arg("--authentication");
        }
        Self::wait(Process::spawn(command, "tansu"), format!("{host}:{port}"))
    }

    /// [`Tansu::start_scram`] with the SCRAM `mechanism` tansu's CLI
    /// names (`scram256` or `scram512`), advertising `advertised`
    /// (`host:port`, e.g. an HAProxy terminating TLS in front of it)
    /// instead of its own address when given.
    pub fn start_scram_advertised(
        host: &str,
        dir: &std::path::Path,
        mechanism: &str,
        (user, password): (&str, &str),
        topics: &[&str],
        advertised: Option<&str>,
    ) -> Tansu {
        let setup = Self::spawn_sqlite(host, dir, false);
        for topic in topics {
            setup.create_topic(topic, 1);
        }
        let out = Command::new(tansu_bin())
            .args(["user", "create", "--mechanism", mechanism])
            .args(["--broker", &format!("tcp://{}", setup.address)])
            .args([user, password])
            .output()
            .expect("tansu user create");
        assert!(
            out.status.success(),
            "tansu user create failed (is tansu built with libsql? scripts/install-deps): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        drop(setup);
        let port = free_port(host);
        let url = format!("tcp://{host}:{port}");
        let advertised = advertised.map_or_else(|| url.clone(), |a| format!("tcp://{a}"));
        let mut command = Command::new(tansu_bin());
        command
            .current_dir(dir)
            .args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &advertised])
            .args(["--storage-engine", "sqlite://tansu.db", "--authentication"]);
        Self::wait(Process::spawn(command, "tansu"), format!("{host}:{port}"))
    }

    fn wait(process: Process, address: String) -> Tansu {
        for _ in 0..300 {
            if std::net::TcpStream::connect(&address).is_ok() {
                return Tansu {
                    _process: process,
                    address,
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("tansu did not accept connections on {address}");
    }

    /// Creates a topic.
    pub fn create_topic(&self, name: &str, partitions: u32) {
        let out = Command::new(tansu_bin())
            .args([
                "topic",
                "create",
                name,
                "--partitions",
                &partitions.to_string(),
            ])
            .args(["--broker", &format!("tcp://{}", self.address)])
            .output()
            .expect("tansu topic create");
        assert!(
            out.status.success(),
            "topic create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
