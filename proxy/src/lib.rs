//! Sluice's data plane. Modules follow the hops a request travels:
//! `listener` (bind, accept, port → route) ▸ `conn` (the per-connection
//! pumps) ▸ `filter` (each virtual cluster's chain of policies) ▸
//! `backend` (broker connections and metadata). `config` holds what the
//! sync client applies, compiled for the request path; `hop` names
//! where things fail.

pub mod backend;
pub mod config;
pub mod conn;
pub mod filter;
pub mod hop;
pub mod kafka;
pub mod listener;
pub mod node;
pub mod sync;
pub mod telemetry;
