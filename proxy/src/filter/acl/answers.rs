//! What the gateway answers itself under `acl_mode = enforce_on_gateway`:
//! the ACL admin APIs (DescribeAcls shows the rules that apply to the
//! asking connection; CreateAcls and DeleteAcls are refused, the rules
//! being Terraform's) and the refusal of a cluster-level request.

use kafka_protocol::{
    messages::{
        AlterPartitionReassignmentsResponse, ApiKey, CreateAclsRequest, CreateAclsResponse,
        DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest, DescribeAclsResponse,
        DescribeClusterResponse, ElectLeadersResponse, InitProducerIdResponse,
        ListPartitionReassignmentsResponse, ResponseKind,
        create_acls_response::AclCreationResult,
        delete_acls_response::DeleteAclsFilterResult,
        describe_acls_response::{AclDescription, DescribeAclsResource},
    },
    protocol::StrBytes,
};

use super::{
    access::{Access, CLUSTER},
    rules::{Operation, ResourceType},
};

/// `CLUSTER_AUTHORIZATION_FAILED`.
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
/// `SECURITY_DISABLED`: what a broker without an authorizer answers to
/// ACL changes; here: ACLs are not changed through Kafka.
const SECURITY_DISABLED: i16 = 54;

/// Kafka's "any" in ACL filters.
const ANY: i8 = 1;
/// Pattern types.
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
/// Permission types.
const DENY: i8 = 2;
const ALLOW: i8 = 3;

/// Why ACL changes are refused.
const MANAGED: &str = "this virtual cluster's ACLs are decided by the Sluice gateway \
                       (acl_mode = enforce_on_gateway) and changed only through its \
                       configuration: edit sluice_cluster_policy_acls in Terraform";

/// DescribeAcls: the enforced rules that apply to the asking connection
/// (their conditions hold for it), as bindings for its principal; a
/// glob `x*` is shown as the PREFIXED pattern `x`, any other glob as a
/// LITERAL pattern holding it. Needs `describe` on the cluster.
pub fn describe(access: &mut Access, request: &DescribeAclsRequest) -> ResponseKind {
    if !access.permit(ResourceType::Cluster, CLUSTER, Operation::Describe) {
        return ResponseKind::DescribeAcls(
            DescribeAclsResponse::default()
                .with_error_code(CLUSTER_AUTHORIZATION_FAILED)
                .with_error_message(Some(StrBytes::from_static_str(
                    "describe on the cluster is not allowed by this virtual cluster's ACLs",
                ))),
        );
    }
    let principal = StrBytes::from_string(access.principal().to_string());
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    if request
        .principal_filter
        .as_ref()
        .is_some_and(|p| *p != principal)
    {
        // The rules shown are the asking principal's.
        return ResponseKind::DescribeAcls(DescribeAclsResponse::default());
    }
    for (_, rule) in access.rules() {
        let code = rule.resource_type.code();
        if request.resource_type_filter != ANY && request.resource_type_filter != code {
            continue;
        }
        let permission = if rule.allow { ALLOW } else { DENY };
        if request.permission_type != ANY && request.permission_type != permission {
            continue;
        }
        for name in &rule.names {
            // Kafka's patterns: an exact name or `*` (LITERAL), `x*`
            // (PREFIXED). Other globs (`a*b`, `*x`) have no binding that
            // means the same, so they are not shown as one.
            let (pattern, shown) = match name.strip_suffix('*') {
                _ if name == "*" => (LITERAL, name.clone()),
                Some(prefix) if !prefix.contains('*') => (PREFIXED, prefix.to_string()),
                _ if !name.contains('*') => (LITERAL, name.clone()),
                _ => continue,
            };
            let wanted = match request.pattern_type_filter {
                LITERAL | PREFIXED => request.pattern_type_filter == pattern,
                _ => true, // ANY, MATCH
            };
            if !wanted {
                continue;
            }
            if request
                .resource_name_filter
                .as_ref()
                .is_some_and(|f| f.as_str() != shown)
            {
                continue;
            }
            let acls: Vec<AclDescription> = rule
                .operations
                .iter()
                .filter(|o| request.operation == ANY || request.operation == o.code())
                .map(|o| {
                    AclDescription::default()
                        .with_principal(principal.clone())
                        .with_host(StrBytes::from_static_str("*"))
                        .with_operation(o.code())
                        .with_permission_type(permission)
                })
                .collect();
            if acls.is_empty() {
                continue;
            }
            resources.push(
                DescribeAclsResource::default()
                    .with_resource_type(code)
                    .with_resource_name(StrBytes::from_string(shown))
                    .with_pattern_type(pattern)
                    .with_acls(acls),
            );
        }
    }
    ResponseKind::DescribeAcls(DescribeAclsResponse::default().with_resources(resources))
}

/// CreateAcls: every creation refused, naming Terraform.
pub fn create(request: &CreateAclsRequest) -> ResponseKind {
    let results = request
        .creations
        .iter()
        .map(|_| {
            AclCreationResult::default()
                .with_error_code(SECURITY_DISABLED)
                .with_error_message(Some(StrBytes::from_static_str(MANAGED)))
        })
        .collect();
    ResponseKind::CreateAcls(CreateAclsResponse::default().with_results(results))
}

/// DeleteAcls: every filter refused, naming Terraform.
pub fn delete(request: &DeleteAclsRequest) -> ResponseKind {
    let results = request
        .filters
        .iter()
        .map(|_| {
            DeleteAclsFilterResult::default()
                .with_error_code(SECURITY_DISABLED)
                .with_error_message(Some(StrBytes::from_static_str(MANAGED)))
        })
        .collect();
    ResponseKind::DeleteAcls(DeleteAclsResponse::default().with_filter_results(results))
}

/// The cluster operation `key` needs, for the APIs that act on the
/// cluster as a whole.
pub fn cluster_operation(key: ApiKey) -> Option<Operation> {
    match key {
        ApiKey::ListPartitionReassignments => Some(Operation::Describe),
        ApiKey::ElectLeaders | ApiKey::AlterPartitionReassignments => Some(Operation::Alter),
        _ => None,
    }
}

/// The answer refusing a cluster-level request of `key`
/// (CLUSTER_AUTHORIZATION_FAILED), or `None` for an API without one.
pub fn cluster_refused(key: ApiKey) -> Option<ResponseKind> {
    let code = CLUSTER_AUTHORIZATION_FAILED;
    Some(match key {
        ApiKey::DescribeCluster => {
            ResponseKind::DescribeCluster(DescribeClusterResponse::default().with_error_code(code))
        }
        ApiKey::ElectLeaders => {
            ResponseKind::ElectLeaders(ElectLeadersResponse::default().with_error_code(code))
        }
        ApiKey::AlterPartitionReassignments => ResponseKind::AlterPartitionReassignments(
            AlterPartitionReassignmentsResponse::default().with_error_code(code),
        ),
        ApiKey::ListPartitionReassignments => ResponseKind::ListPartitionReassignments(
            ListPartitionReassignmentsResponse::default().with_error_code(code),
        ),
        ApiKey::InitProducerId => ResponseKind::InitProducerId(
            InitProducerIdResponse::default()
                .with_error_code(code)
                .with_producer_id((-1).into())
                .with_producer_epoch(-1),
        ),
        _ => return None,
    })
}
