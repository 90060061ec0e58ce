//! PROXY protocol from trusted load balancers, end to end: HAProxy with
//! `send-proxy-v2` in front of a Sluice listener (the request after the
//! header is served), a v1 header naming a client that then misbehaves
//! (node status names that client and the load balancer), a trusted peer
//! without a header and an untrusted peer with one (both refused).

use std::time::Duration;

use sluice_acceptance::{
    broker::free_port,
    haproxy::Haproxy,
    probe::{API_VERSIONS, answered},
    stack::{Stack, create, two_ports},
};
use sluice_proto::admin::v1::{
    Listener, ListenerPolicyForwardToVirtualCluster, PortMapping, ProxyProtocol, VirtualCluster,
    entity::Spec, listener_policy_forward_to_virtual_cluster::Config as Forward,
};
use tokio::{
    io::AsyncWriteExt,
    net::{TcpSocket, TcpStream},
};

const WAIT: Duration = Duration::from_secs(30);
const ASK: Duration = Duration::from_secs(5);

/// A connection to `address` from the local address `from`.
async fn connect_from(from: &str, address: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(address.parse().unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_from_trusted_load_balancers_name_the_client() {
    let mut stack = Stack::start(&[]).await;
    let gw = stack.gateway.id.clone();
    let vc = create(
        &mut stack.admin,
        &gw,
        "behind-lb",
        Spec::VirtualCluster(VirtualCluster {
            destination_id: stack.backend.id.clone(),
            dns_label: "behind-lb".into(),
            ..Default::default()
        }),
    )
    .await;
    let ports = two_ports();
    let listener = create(
        &mut stack.admin,
        &gw,
        "behind-lb",
        Spec::Listener(Listener {
            addresses: vec!["127.0.0.1".into()],
            ports: vec![ports.0.to_string(), ports.1.to_string()],
            proxy_protocol: Some(ProxyProtocol {
                trusted_ranges: vec!["127.0.0.1/32".into()],
            }),
        }),
    )
    .await;
    create(
        &mut stack.admin,
        &gw,
        "behind-lb",
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
    stack
        .proxy
        .wait_for(WAIT, |l| {
            l.contains(&format!("listening on 127.0.0.1:{}", ports.1))
        })
        .expect("the listener is bound");
    let bootstrap = format!("127.0.0.1:{}", ports.0);

    // A real load balancer (HAProxy, PROXY v2): the request after the
    // header is served.
    let dir = tempfile::tempdir().unwrap();
    let lb_port = free_port("127.0.0.1");
    let lb = Haproxy::start(
        dir.path(),
        "lb",
        &format!("127.0.0.1:{lb_port}"),
        &format!("{bootstrap} send-proxy-v2"),
    );
    let mut through = TcpStream::connect(&lb.address).await.unwrap();
    assert!(
        answered(&mut through, ASK).await,
        "not served through HAProxy"
    );

    // A v1 header naming a client that then sends a frame too large:
    // the refusal names the client and the load balancer.
    let mut named = TcpStream::connect(&bootstrap).await.unwrap();
    let header = format!("PROXY TCP4 192.0.2.7 127.0.0.1 5555 {}\r\n", ports.0);
    named.write_all(header.as_bytes()).await.unwrap();
    named.write_all(&[0x7f, 0xff, 0xff, 0xff]).await.unwrap();
    let error = stack
        .wait_for_error(WAIT, |e| {
            e.hop == "listener"
                && e.last_message
                    .contains("192.0.2.7:5555 (via load balancer 127.0.0.1:")
        })
        .await;
    assert!(error.is_some(), "the client's own address was not reported");
    // The same header, then a request: served.
    let mut served = TcpStream::connect(&bootstrap).await.unwrap();
    served.write_all(header.as_bytes()).await.unwrap();
    assert!(answered(&mut served, ASK).await);

    // A trusted peer that sends no header is refused.
    let mut bare = TcpStream::connect(&bootstrap).await.unwrap();
    assert!(!answered(&mut bare, ASK).await, "served without a header");
    let refused = stack
        .wait_for_error(WAIT, |e| {
            e.kind == "proxy_protocol" && e.last_message.contains("valid PROXY")
        })
        .await;
    assert!(
        refused.is_some(),
        "no proxy_protocol error for a missing header"
    );

    // An untrusted peer cannot claim another address.
    let mut spoof = connect_from("127.0.0.3", &bootstrap).await;
    // The proxy may refuse (and reset) as soon as it reads the header:
    // a failed write is a refusal too, which `answered` then reports.
    let _ = spoof.write_all(header.as_bytes()).await;
    let _ = spoof.write_all(&API_VERSIONS).await;
    assert!(
        !answered(&mut spoof, ASK).await,
        "an untrusted header was honoured"
    );
    let refused = stack
        .wait_for_error(WAIT, |e| {
            e.kind == "proxy_protocol"
                && e.last_message
                    .contains("not in proxy_protocol.trusted_ranges")
        })
        .await;
    assert!(
        refused.is_some(),
        "no proxy_protocol error for an untrusted header"
    );
}
