use std::sync::Arc;

use sluice_proto::dataplane::v1::ProbeRequest;

use super::Prober;
use crate::{
    config::{Config, ConfigStore},
    node::Node,
    telemetry::Telemetry,
};

fn prober() -> Arc<Prober> {
    let store = Arc::new(ConfigStore::new(Config::default()));
    Prober::new(Arc::new(Node::new(store, Arc::new(Telemetry::default()))))
}

#[tokio::test]
async fn an_address_no_listener_serves_fails_at_the_route_step() {
    let result = prober()
        .run(ProbeRequest {
            probe_id: "p1".into(),
            address: "127.0.0.1:1".into(),
            backend_cluster_ids: vec!["b1".into()],
            ..Default::default()
        })
        .await;
    assert_eq!(result.probe_id, "p1");
    let steps: Vec<(&str, &str, &str)> = result
        .steps
        .iter()
        .map(|s| (s.target.as_str(), s.step.as_str(), s.status.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("listener", "route", "fail"),
            ("backend_cluster", "route", "fail")
        ]
    );
    assert!(
        result.steps[0].message.contains("no listener"),
        "{result:?}"
    );
    assert!(result.status.is_some());
}

#[tokio::test]
async fn a_second_probe_while_one_runs_is_answered_busy() {
    let prober = prober();
    // As if another probe were running.
    prober
        .busy
        .store(true, std::sync::atomic::Ordering::Release);
    let second = prober.run(ProbeRequest::default()).await;
    assert!(second.busy && second.steps.is_empty(), "{second:?}");
}

#[test]
fn long_messages_are_cut_on_a_character_boundary() {
    let cut = super::cut("é".repeat(1000));
    assert!(cut.len() <= 1024 && cut.chars().all(|c| c == 'é'));
}
