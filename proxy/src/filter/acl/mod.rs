//! Gateway-enforced ACLs (`acl_mode = enforce_on_gateway`): the rules of
//! a virtual cluster's `cluster_policy_acls` decide each (resource type,
//! name, operation) a request needs as Kafka's authorizer does: a deny
//! that matches wins, else an allow that matches, and nothing matching is
//! a denial (so neither rule order nor the order Terraform creates
//! policies in can change a decision). A policy runs
//! only where its `condition` (and its parents') holds for the request —
//! that is how rules are given to principals — and a `shadow` policy is
//! reported, never applied.
//!
//! The per-API walk over every name of a request is the namespace
//! filter's (`filter::namespace`): it asks [`Access`] for each name it
//! renames, with the operation [`needs`] gives the API, so names and
//! permissions are decided in one place and the same per-resource errors
//! are returned for both.

mod access;
pub mod answers;
mod needs;
mod policies;
mod rules;

pub use access::{Access, CLUSTER, Denial};
pub use needs::{Needs, needs};
pub use policies::AclPolicies;
pub use rules::{Operation, ResourceType, Rule};

#[cfg(test)]
mod tests;
