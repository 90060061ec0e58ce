//! Sluice's data plane. Modules follow the hops a request travels:
//! `listener` (bind, accept, PROXY header, TLS or plaintext, SNI → route)
//! ▸ `conn` (the per-connection pumps) ▸ `filter` (each virtual cluster's
//! chain of policies) ▸ `backend` (broker connections with TLS and SASL,
//! and metadata). `config` holds what the sync client applies, compiled
//! for the request path; `tls` compiles both sides' TLS; `io` is the
//! plain-or-TLS stream; `hop` names where things fail; `quota` holds the
//! buckets quota policies count against.

pub mod auth;
pub mod backend;
pub mod config;
pub mod conn;
pub mod filter;
pub mod hop;
pub mod io;
pub mod kafka;
pub mod listener;
pub mod node;
pub mod probe;
pub mod quota;
pub mod sync;
pub mod telemetry;
pub mod tls;
