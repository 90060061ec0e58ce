//! terraform-provider-sluice: Terraform plugin protocol 6 in Rust. The
//! protocol layer (`plugin`) stands apart; a resource is a schema derived
//! from the admin API's descriptors plus the shared CRUD in `resources`.

pub mod client;
pub mod convert;
pub mod data_sources;
pub mod diagnosis;
pub mod diagnostics;
pub mod docs;
pub mod plan;
pub mod plugin;
pub mod provider;
pub mod resources;
pub mod schema;
pub mod secrets;
pub mod upgrade;
