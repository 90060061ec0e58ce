//! What the client-authentication tests share: virtual clusters with
//! authentication rules served on new listeners, the JSON reports of the
//! client scripts, and the proxy's view of each login (node status at
//! `hop=auth`, its `client connected` log lines, `auth_failed` events).

use std::time::Duration;

use sluice_proto::admin::v1::{
    Anonymous, Entity, EventHandler, EventHook, EventHookConfig, EventSource, Listener,
    ListenerPolicyForwardToVirtualCluster, ListenerPolicyTlsServer, Mediation, NodeHopErrors,
    PortMapping, Principal, Secret, VirtualCluster, VirtualClusterAuthentication, VirtualSaslPlain,
    entity::Spec, listener_policy_forward_to_virtual_cluster::Config as Forward,
    virtual_cluster_authentication::Method,
};

use crate::{
    clients,
    stack::{Stack, create, two_ports},
    webhook::{Behaviour, Receiver},
};

/// How long each wait for the proxy or node status lasts.
pub const WAIT: Duration = Duration::from_secs(30);
/// The proxy logs each admitted connection's principal at debug level.
pub const PROXY_LOG: [&str; 2] = ["--log", "info,sluice_proxy::conn=debug"];

/// A write-only secret with this value.
pub fn secret(value: &str) -> Option<Secret> {
    Some(Secret {
        value: value.into(),
        ..Default::default()
    })
}

/// A rule of this method.
pub fn rule(method: Method) -> VirtualClusterAuthentication {
    VirtualClusterAuthentication {
        method: Some(method),
    }
}

/// `sasl_plain { mediation = terminate, principals = users }`.
pub fn plain_terminate(users: &[(&str, &str)]) -> VirtualClusterAuthentication {
    rule(Method::SaslPlain(VirtualSaslPlain {
        mediation: Mediation::Terminate as i32,
        principals: users
            .iter()
            .map(|(username, password)| Principal {
                username: (*username).into(),
                password: secret(password),
                ..Default::default()
            })
            .collect(),
    }))
}

/// `anonymous {}`.
pub fn anonymous() -> VirtualClusterAuthentication {
    rule(Method::Anonymous(Anonymous {}))
}

/// A virtual cluster served on a new port-mapped listener.
pub struct Served {
    /// The virtual cluster.
    pub vc: Entity,
    /// Its bootstrap address.
    pub bootstrap: String,
    /// The address the listener advertises for tansu's broker 111.
    pub broker: String,
}

/// Creates a virtual cluster of `backend` with `authentication`, a
/// listener (with `tls` when given, created before the forward policy so
/// the port is TLS from its first connection) and the forward policy,
/// and waits until the proxy listens on both ports.
pub async fn serve(
    stack: &mut Stack,
    name: &str,
    backend: &str,
    authentication: Vec<VirtualClusterAuthentication>,
    tls: Option<ListenerPolicyTlsServer>,
) -> Served {
    let gw = stack.gateway.id.clone();
    let ports = two_ports();
    let vc = create(
        &mut stack.admin,
        &gw,
        name,
        Spec::VirtualCluster(VirtualCluster {
            destination_id: backend.into(),
            dns_label: name.into(),
            authentication,
            ..Default::default()
        }),
    )
    .await;
    let listener = create(
        &mut stack.admin,
        &gw,
        name,
        Spec::Listener(Listener {
            addresses: vec!["127.0.0.1".into()],
            ports: vec![ports.0.to_string(), ports.1.to_string()],
            ..Default::default()
        }),
    )
    .await;
    let with_tls = tls.is_some();
    if let Some(tls) = tls {
        create(
            &mut stack.admin,
            &gw,
            &format!("{name}-tls"),
            Spec::ListenerPolicyTlsServer(ListenerPolicyTlsServer {
                listener_id: listener.id.clone(),
                ..tls
            }),
        )
        .await;
    }
    create(
        &mut stack.admin,
        &gw,
        name,
        Spec::ListenerPolicyForwardToVirtualCluster(ListenerPolicyForwardToVirtualCluster {
            listener_id: listener.id.clone(),
            config: Some(Forward::PortMapping(PortMapping {
                destination_id: vc.id.clone(),
                advertised_host: "127.0.0.1".into(),
                bootstrap_port: 0,
                min_broker_id: 111,
            })),
        }),
    )
    .await;
    for port in [ports.0, ports.1] {
        stack
            .proxy
            .wait_for(WAIT, |l| {
                l.contains(&format!("listening on 127.0.0.1:{port}"))
                    && (!with_tls || l.contains("tls=true"))
            })
            .unwrap_or_else(|| panic!("{name}: the proxy never listened on {port}"));
    }
    Served {
        vc,
        bootstrap: format!("127.0.0.1:{}", ports.0),
        broker: format!("127.0.0.1:{}", ports.1),
    }
}

/// A client script's report: the last line of its output that is a JSON
/// object (its stderr, with the client library's logs, comes after it).
pub fn report(out: &str) -> serde_json::Value {
    out.lines()
        .rev()
        .filter(|l| l.starts_with('{'))
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON report in: {out}"))
}

/// Runs a client script that must be refused; its JSON report's `error`.
pub fn refused(program: &str, script: &str, args: &[&str]) -> String {
    let (ok, out) = clients::try_run(program, script, args);
    assert!(!ok, "{script} {args:?} was served: {out}");
    report(&out)["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {out}"))
        .to_string()
}

/// Asserts a script's successful report: it consumed what it produced
/// (roundtrip) and the metadata named only the listener's broker address.
pub fn assert_served(out: &str, served: &Served) {
    let r = report(out);
    assert_eq!(r["brokers"], serde_json::json!([served.broker]), "{out}");
}

/// Waits for the node to count an `auth_failed` error at hop `auth` for
/// `vc` with `detail`; fails the test, showing node status, if none comes.
pub async fn expect_auth_failure(stack: &mut Stack, vc: &Entity, detail: &str) -> NodeHopErrors {
    let found = stack
        .wait_for_error(WAIT, |e| {
            e.hop == "auth" && e.entity == vc.id && e.kind == "auth_failed" && e.detail == detail
        })
        .await;
    match found {
        Some(e) => {
            assert!(e.count >= 1, "{e:?}");
            e
        }
        None => {
            let all = stack.wait_for_error(Duration::from_secs(1), |_| true).await;
            panic!(
                "no hop=auth auth_failed detail={detail} for {}; node status (first): {all:?}",
                vc.name
            );
        }
    }
}

/// Waits for the proxy's debug line for a connection admitted to `vc` as
/// `principal` (e.g. `User:alice`) with `mechanism`.
pub fn expect_connected(stack: &Stack, vc: &Entity, principal: &str, mechanism: &str) {
    let vc_field = format!("virtual_cluster=\"{}\"", vc.id);
    let principal_field = format!("principal={principal} ");
    let mechanism_field = format!("mechanism=\"{mechanism}\"");
    let found = stack.proxy.wait_for(WAIT, |l| {
        l.contains("client connected")
            && l.contains(&vc_field)
            && l.contains(&principal_field)
            && l.contains(&mechanism_field)
    });
    assert!(
        found.is_some(),
        "no 'client connected' log for {} as {principal} ({mechanism})",
        vc.name
    );
}

/// Whether the proxy ever logged `vc` admitting `principal`.
pub fn ever_connected_as(stack: &Stack, vc: &Entity, principal: &str) -> bool {
    let vc_field = format!("virtual_cluster=\"{}\"", vc.id);
    let principal_field = format!("principal={principal} ");
    stack.proxy.count_matching(|l| {
        l.contains("client connected") && l.contains(&vc_field) && l.contains(&principal_field)
    }) > 0
}

/// An event hook on the stack's gateway POSTing `auth_failed` data-plane
/// events to a new receiver, once its creation ping has arrived.
pub async fn auth_failed_hook(stack: &mut Stack) -> Receiver {
    let mut receiver = Receiver::start("127.0.0.1:0", Behaviour::Ok).await;
    let gw = stack.gateway.id.clone();
    create(
        &mut stack.admin,
        &gw,
        "auth-failures",
        Spec::EventHook(EventHook {
            source: EventSource::Dataplane as i32,
            event: "auth_failed".into(),
            handler: EventHandler::Webhook as i32,
            config: Some(EventHookConfig {
                url: receiver.url(),
                timeout: 5,
                ..Default::default()
            }),
            snooze_seconds: 0,
        }),
    )
    .await;
    assert_eq!(receiver.next().await.json()["event"], "ping");
    receiver
}
