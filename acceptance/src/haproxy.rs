//! Debian's HAProxy as a real L4 peer in tests and benchmarks: a TLS
//! terminator in front of tansu (tansu 0.6 cannot serve TLS itself: its
//! `--cert` and `--key` flags conflict and its acceptor is never used),
//! or a load balancer that sends PROXY protocol headers.

use std::{path::Path, process::Command, time::Duration};

use crate::process::Process;

/// A running HAProxy (stopped on drop).
pub struct Haproxy {
    _process: Process,
    /// The first `bind` address of its configuration.
    pub address: String,
}

impl Haproxy {
    /// The HAProxy process id (for CPU and memory readings).
    pub fn pid(&self) -> u32 {
        self._process.pid()
    }

    /// Starts HAProxy in TCP mode with one frontend bound on `bind`
    /// (`host:port` plus bind options, e.g. `ssl crt file.pem`) and one
    /// backend server line (`host:port` plus server options, e.g.
    /// `send-proxy-v2`); waits until the frontend accepts.
    pub fn start(dir: &Path, name: &str, bind: &str, server: &str) -> Haproxy {
        let config = dir.join(format!("{name}.cfg"));
        std::fs::write(
            &config,
            format!(
                "global\n  maxconn 4096\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1m\n  timeout server 1m\n\
                 frontend front\n  bind {bind}\n  default_backend back\n\
                 backend back\n  server s1 {server}\n"
            ),
        )
        .expect("write haproxy.cfg");
        let address = bind
            .split_whitespace()
            .next()
            .expect("a bind address")
            .to_string();
        Self::run(config, name, &[&address])
    }

    /// Starts HAProxy on `sections` (frontends, backends, listens: the
    /// text after a `global`/`defaults` preamble of TCP mode and
    /// timeouts) and waits until every one of `addresses` (`host:port`)
    /// accepts; `address` is the first.
    pub fn start_config(dir: &Path, name: &str, sections: &str, addresses: &[&str]) -> Haproxy {
        let config = dir.join(format!("{name}.cfg"));
        std::fs::write(
            &config,
            format!(
                "global\n  maxconn 4096\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1m\n  timeout server 1m\n{sections}"
            ),
        )
        .expect("write haproxy.cfg");
        Self::run(config, name, addresses)
    }

    fn run(config: std::path::PathBuf, name: &str, addresses: &[&str]) -> Haproxy {
        let mut command = Command::new("haproxy");
        command.arg("-db").arg("-f").arg(&config);
        let process = Process::spawn(command, name);
        for address in addresses {
            let up = (0..200).any(|_| {
                let up = std::net::TcpStream::connect(address).is_ok();
                if !up {
                    std::thread::sleep(Duration::from_millis(50));
                }
                up
            });
            assert!(up, "haproxy {name} never accepted on {address}");
        }
        Haproxy {
            _process: process,
            address: addresses.first().expect("an address").to_string(),
        }
    }
}
