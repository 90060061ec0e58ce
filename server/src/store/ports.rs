//! Port claims only the database can check. Two listeners of one gateway
//! whose ports overlap on the same address (a wildcard address overlaps
//! every address), or a port-mapping forward policy sharing its listener
//! with another forward policy, would leave each data plane to pick a
//! winner: one port could serve tenant A on one node and tenant B on
//! another. Such writes are refused, naming both entities and the port.
//! A port mapping's broker ids (`min_broker_id` + one per broker port)
//! must also fit in Kafka's int32 broker ids.

use prost::Message;
use sluice_proto::admin::v1::{
    BootstrapPort, Entity, Listener, ListenerPolicyForwardToVirtualCluster, PortMapping,
    entity::Spec, listener_policy_forward_to_virtual_cluster::Config as Forward,
};
use sqlx::{Row, SqliteConnection};

use crate::{
    error::{ApiError, Violations},
    validate::{known::Known, rules::parse_port_spec},
};

/// Every other entity of `kind` in the gateway, decoded.
async fn others(
    conn: &mut SqliteConnection,
    kind: &str,
    gateway_id: &str,
    id: &str,
) -> Result<Vec<Entity>, ApiError> {
    let rows =
        sqlx::query("SELECT body FROM entities WHERE kind = ? AND gateway_id = ? AND id != ?")
            .bind(kind)
            .bind(gateway_id)
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter()
        .map(|row| {
            Entity::decode(row.get::<&[u8], _>("body"))
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("corrupt entity body: {e}")))
        })
        .collect()
}

/// Whether two listener addresses cannot both be bound to one port: the
/// same address however it is spelled (`::ffff:10.0.0.5` is `10.0.0.5`,
/// `0:0::1` is `::1`), or either is a wildcard (`0.0.0.0`, `::`, `::0`).
/// A host name may resolve to anything, so it clashes with every address.
fn same_address(a: &str, b: &str) -> bool {
    let parse = |x: &str| {
        x.trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| ip.to_canonical())
    };
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x == y || x.is_unspecified() || y.is_unspecified(),
        _ => true,
    }
}

/// The port ranges of a listener, with the index of their entry.
fn ranges(listener: &Listener) -> Vec<(usize, u16, u16)> {
    listener
        .ports
        .iter()
        .enumerate()
        .filter_map(|(i, p)| parse_port_spec(p).map(|(a, b)| (i, a, b)))
        .collect()
}

/// How many ports a listener has.
fn port_count(listener: &Listener) -> u64 {
    ranges(listener)
        .iter()
        .map(|(_, a, b)| u64::from(b - a) + 1)
        .sum()
}

/// Checks that a port mapping's highest broker id fits in an int32.
fn broker_ids_fit(v: &mut Violations, field: &str, mapping: &PortMapping, ports: u64) {
    let brokers = if mapping.bootstrap_port == BootstrapPort::None as i32 {
        ports
    } else {
        ports.saturating_sub(1)
    };
    let highest = i64::from(mapping.min_broker_id) + brokers as i64 - 1;
    if highest > i64::from(i32::MAX) {
        v.add(
            field,
            format!(
                "min_broker_id {} with {brokers} broker ports reaches broker id {highest}, above the largest Kafka broker id ({})",
                mapping.min_broker_id,
                i32::MAX
            ),
        );
    }
}

/// Refuses port clashes for a listener or forward policy being written,
/// as far as the fields they depend on are known (an unknown address
/// could be any; an unknown listener could be any).
pub(super) async fn check(
    conn: &mut SqliteConnection,
    entity: &Entity,
    known: &Known,
    v: &mut Violations,
) -> Result<(), ApiError> {
    match &entity.spec {
        Some(Spec::Listener(listener)) if known.is_whole("addresses") => {
            check_listener(conn, entity, listener, v).await
        }
        Some(Spec::ListenerPolicyForwardToVirtualCluster(forward))
            if known.is_known("listener_id") =>
        {
            check_forward(conn, entity, forward, v).await
        }
        _ => Ok(()),
    }
}

async fn check_listener(
    conn: &mut SqliteConnection,
    entity: &Entity,
    listener: &Listener,
    v: &mut Violations,
) -> Result<(), ApiError> {
    let mine = ranges(listener);
    for other in others(conn, "listener", &entity.gateway_id, &entity.id).await? {
        let Some(Spec::Listener(theirs)) = &other.spec else {
            continue;
        };
        let Some(address) = listener
            .addresses
            .iter()
            .find(|a| theirs.addresses.iter().any(|b| same_address(a, b)))
        else {
            continue;
        };
        for (i, a, b) in &mine {
            if let Some((_, x, _)) = ranges(theirs)
                .into_iter()
                .find(|(_, x, y)| a <= y && x <= b)
            {
                let port = (*a).max(x);
                v.add(
                    format!("ports[{i}]"),
                    format!(
                        "port {port} on {address} is already a port of listener {:?} ({}) in this gateway",
                        other.name, other.id
                    ),
                );
            }
        }
    }
    // The port mappings on this listener must still fit its new ports.
    for other in others(
        conn,
        "listener_policy_forward_to_virtual_cluster",
        &entity.gateway_id,
        &entity.id,
    )
    .await?
    {
        if let Some(Spec::ListenerPolicyForwardToVirtualCluster(f)) = &other.spec
            && f.listener_id == entity.id
            && let Some(Forward::PortMapping(mapping)) = &f.config
        {
            broker_ids_fit(v, "ports", mapping, port_count(listener));
        }
    }
    Ok(())
}

async fn check_forward(
    conn: &mut SqliteConnection,
    entity: &Entity,
    forward: &ListenerPolicyForwardToVirtualCluster,
    v: &mut Violations,
) -> Result<(), ApiError> {
    let port_mapping = matches!(forward.config, Some(Forward::PortMapping(_)));
    for other in others(
        conn,
        "listener_policy_forward_to_virtual_cluster",
        &entity.gateway_id,
        &entity.id,
    )
    .await?
    {
        let Some(Spec::ListenerPolicyForwardToVirtualCluster(f)) = &other.spec else {
            continue;
        };
        if f.listener_id != forward.listener_id {
            continue;
        }
        let theirs_mapping = matches!(f.config, Some(Forward::PortMapping(_)));
        if port_mapping || theirs_mapping {
            v.add(
                "listener_id",
                format!(
                    "listener {:?} already has forward policy {:?} ({}); a port_mapping policy claims every port of its listener, so it cannot share one",
                    forward.listener_id, other.name, other.id
                ),
            );
        }
    }
    if let Some(Forward::PortMapping(mapping)) = &forward.config {
        let row = sqlx::query("SELECT body FROM entities WHERE id = ? AND kind = 'listener'")
            .bind(&forward.listener_id)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = row {
            let listener = Entity::decode(row.get::<&[u8], _>("body"))
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("corrupt entity body: {e}")))?;
            if let Some(Spec::Listener(l)) = &listener.spec {
                broker_ids_fit(v, "port_mapping.min_broker_id", mapping, port_count(l));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_overlap_every_address_however_spelled() {
        assert!(same_address("127.0.0.1", "127.0.0.1"));
        assert!(same_address("0.0.0.0", "127.0.0.1"));
        assert!(same_address("10.0.0.5", "::"));
        assert!(same_address("0:0:0:0:0:0:0:0", "10.0.0.5"));
        assert!(same_address("::0", "::1"));
        assert!(same_address("0:0::1", "::1"));
        assert!(same_address("::ffff:10.0.0.5", "10.0.0.5"));
        assert!(
            same_address("localhost", "127.0.0.1"),
            "a host name may be anything"
        );
        assert!(!same_address("127.0.0.1", "127.0.0.2"));
        assert!(!same_address("::1", "127.0.0.1"));
    }

    #[test]
    fn broker_ids_must_fit_in_an_int32() {
        let mapping = PortMapping {
            min_broker_id: i32::MAX - 1,
            bootstrap_port: BootstrapPort::AtStart as i32,
            ..Default::default()
        };
        let mut v = Violations::default();
        broker_ids_fit(&mut v, "f", &mapping, 3); // ids MAX-1, MAX
        assert!(v.into_result("x").is_ok());
        let mut v = Violations::default();
        broker_ids_fit(&mut v, "f", &mapping, 4); // ids up to MAX+1
        assert!(v.into_result("x").is_err());
    }
}
