//! Kafka wire handling the proxy needs around the `kafka-protocol` crate's
//! types: frames, and the response rewriting that hides backend brokers.

pub mod frame;
pub mod rewrite;
