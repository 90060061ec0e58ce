use sluice_proto::{
    admin::v1::{BackendCluster, Entity, Gateway, Kind, VirtualCluster, entity::Spec},
    dataplane::v1::{ConfigUpdate, Removed},
};

use super::{Config, cache::Cache};

fn gateway() -> Entity {
    Entity {
        id: "gw".into(),
        name: "gw".into(),
        spec: Some(Spec::Gateway(Gateway::default())),
        ..Default::default()
    }
}

fn backend(id: &str) -> Entity {
    Entity {
        id: id.into(),
        gateway_id: "gw".into(),
        spec: Some(Spec::BackendCluster(BackendCluster::default())),
        ..Default::default()
    }
}

fn vc(id: &str, destination: &str) -> Entity {
    Entity {
        id: id.into(),
        gateway_id: "gw".into(),
        spec: Some(Spec::VirtualCluster(VirtualCluster {
            destination_id: destination.into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn snapshot(revision: i64, upserted: Vec<Entity>) -> ConfigUpdate {
    ConfigUpdate {
        revision,
        snapshot: true,
        upserted,
        ..Default::default()
    }
}

fn delta(base: i64, revision: i64, upserted: Vec<Entity>, removed: &[&str]) -> ConfigUpdate {
    ConfigUpdate {
        revision,
        base_revision: base,
        upserted,
        removed: removed
            .iter()
            .map(|id| Removed {
                kind: Kind::BackendCluster as i32,
                id: id.to_string(),
            })
            .collect(),
        ..Default::default()
    }
}

#[test]
fn snapshots_and_deltas_apply_in_order() {
    let c = Config::default()
        .apply(&snapshot(3, vec![gateway(), backend("b1")]))
        .unwrap();
    assert_eq!(c.revision, 3);
    let c = c.apply(&delta(3, 5, vec![vc("v1", "b1")], &[])).unwrap();
    assert!(c.get("v1").is_some());
    let c = c
        .apply(&delta(5, 6, vec![backend("b2"), vc("v1", "b2")], &["b1"]))
        .unwrap();
    assert!(c.get("b1").is_none() && c.get("b2").is_some());
}

#[test]
fn a_delta_on_the_wrong_base_is_refused() {
    let c = Config::default()
        .apply(&snapshot(3, vec![gateway()]))
        .unwrap();
    let err = c.apply(&delta(2, 4, vec![backend("b1")], &[])).unwrap_err();
    assert!(
        err.contains("revision 2") && err.contains("revision 3"),
        "{err}"
    );
}

#[test]
fn a_dangling_reference_is_refused_naming_entity_and_field() {
    let c = Config::default()
        .apply(&snapshot(3, vec![gateway(), backend("b1"), vc("v1", "b1")]))
        .unwrap();
    let err = c.apply(&delta(3, 4, vec![], &["b1"])).unwrap_err();
    assert!(
        err.contains("virtual_cluster v1") && err.contains("destination_id"),
        "{err}"
    );
    let err = c
        .apply(&delta(3, 4, vec![vc("v2", "v1")], &[]))
        .unwrap_err();
    assert!(err.contains("not a backend_cluster"), "{err}");
}

#[test]
fn the_cache_round_trips_and_keeps_a_node_id() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path()).unwrap();
    assert!(cache.load().unwrap().is_none());
    let c = Config::default()
        .apply(&snapshot(7, vec![gateway(), backend("b1")]))
        .unwrap();
    cache.save(&c).unwrap();
    let loaded = cache.load().unwrap().unwrap();
    assert_eq!(loaded.revision, 7);
    assert!(loaded.get("b1").is_some());
    assert_eq!(cache.node_id().unwrap(), cache.node_id().unwrap());
    std::fs::write(dir.path().join("config.pb"), b"\xff\xff garbage").unwrap();
    assert!(cache.load().is_err());
}

#[cfg(unix)]
#[test]
fn the_cache_is_written_0600_even_over_a_leftover_temp_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path()).unwrap();
    // A temp file left by a crash (or an older version) with a wider mode.
    let tmp = dir.path().join("config.pb.tmp");
    std::fs::write(&tmp, b"old").unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
    let c = Config::default()
        .apply(&snapshot(3, vec![gateway()]))
        .unwrap();
    cache.save(&c).unwrap();
    let mode = std::fs::metadata(dir.path().join("config.pb"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "config.pb holds secrets");
    assert!(!tmp.exists());
}
