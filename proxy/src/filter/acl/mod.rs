//! Gateway-enforced ACLs (`acl_mode = enforce_on_gateway`): the rules of a
//! virtual cluster's `cluster_policy_acls`, in order, decide each
//! (resource type, name, operation) a request needs; the first rule that
//! matches decides, and nothing matching is a denial. This module holds
//! the decision; the filter that asks it per API comes with the rest of
//! the ACL work (issue #16), until then `acl_mode = enforce_on_gateway`
//! stays on the not-enforced list and refuses connections.

mod rules;

pub use rules::{Acls, Decision, Operation, ResourceType};
