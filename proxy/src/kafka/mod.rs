//! Kafka wire handling the proxy needs around the `kafka-protocol` crate's
//! types: frames, re-encoded messages that reference their record sets,
//! record sets decoded with bounded decompression, and what is read of a
//! request without decoding it.

pub mod encoded;
pub mod frame;
pub mod records;
pub mod request;
