//! Sluice's control plane: the admin API, the store and its revision log.

pub mod api;
pub mod cli;
pub mod diagnose;
pub mod duration;
pub mod error;
pub mod events;
pub mod hub;
pub mod pki;
pub mod retention;
pub mod secrets;
pub mod serve;
pub mod store;
pub mod sync;
pub mod validate;
