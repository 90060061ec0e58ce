//! Sluice's control plane: the admin API, the store and its revision log.

pub mod api;
pub mod error;
pub mod secrets;
pub mod serve;
pub mod store;
pub mod validate;
