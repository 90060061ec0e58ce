//! Kafka wire handling the proxy needs around the `kafka-protocol` crate's
//! types: frames, and what is read of a request without decoding it.

pub mod frame;
pub mod request;
