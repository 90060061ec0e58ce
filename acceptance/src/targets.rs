//! The three targets the benchmarks compare side by side: tansu
//! directly, HAProxy in TCP mode in front of its own tansu (the L4
//! baseline), and a whole Sluice stack (passthrough virtual cluster) with
//! its own tansu. Each has topics `bench` and `warm-up` (3 partitions).

use crate::{
    broker::{Tansu, free_port},
    haproxy::Haproxy,
    stack::Stack,
};

/// One target of one round, ready to measure (dropping it stops its
/// processes).
pub enum Target {
    /// A broker, reached directly.
    Direct(Tansu),
    /// HAProxy on this port in front of its own broker (kept running).
    Haproxy {
        /// Its broker.
        broker: Tansu,
        /// HAProxy.
        haproxy: Haproxy,
        /// Its port.
        port: u16,
    },
    /// A whole Sluice stack with its own broker.
    Sluice(Box<Stack>),
}

impl Target {
    /// The targets' names, by index.
    pub const NAMES: [&'static str; 3] = ["direct", "haproxy", "sluice"];

    /// A fresh broker (and proxy) for target `i`.
    pub async fn start(i: usize) -> Target {
        match i {
            0 => {
                let tansu = Tansu::start("127.0.0.4");
                tansu.create_topic("bench", 3);
                tansu.create_topic("warm-up", 3);
                Target::Direct(tansu)
            }
            1 => {
                let port = free_port("127.0.0.1");
                let tansu =
                    Tansu::start_advertised("127.0.0.3", Some(&format!("127.0.0.1:{port}")));
                tansu.create_topic("bench", 3);
                tansu.create_topic("warm-up", 3);
                let dir = tempfile::tempdir().expect("tempdir");
                let haproxy = Haproxy::start(
                    dir.path(),
                    "haproxy",
                    &format!("127.0.0.1:{port}"),
                    &tansu.address,
                );
                Target::Haproxy {
                    broker: tansu,
                    haproxy,
                    port,
                }
            }
            _ => Target::Sluice(Box::new(Stack::start(&["bench", "warm-up"]).await)),
        }
    }

    /// Where clients bootstrap.
    pub fn bootstrap(&self) -> String {
        match self {
            Target::Direct(t) => t.address.clone(),
            Target::Haproxy { port, .. } => format!("127.0.0.1:{port}"),
            Target::Sluice(stack) => stack.bootstrap(),
        }
    }

    /// The proxy process, if the target has one.
    pub fn proxy_pid(&self) -> Option<u32> {
        match self {
            Target::Direct(_) => None,
            Target::Haproxy { haproxy, .. } => Some(haproxy.pid()),
            Target::Sluice(stack) => Some(stack.proxy.pid()),
        }
    }

    /// The broker behind the target.
    pub fn broker(&self) -> &Tansu {
        match self {
            Target::Direct(t) => t,
            Target::Haproxy { broker, .. } => broker,
            Target::Sluice(stack) => &stack.tansu,
        }
    }
}
