//! Sluice's data plane. Today: the configuration a node holds and the sync
//! client that keeps it current. The Kafka hops (listener ▸ virtual cluster
//! ▸ backend) build on `config`.

pub mod backend;
pub mod config;
pub mod kafka;
pub mod listener;
pub mod sync;
pub mod telemetry;
