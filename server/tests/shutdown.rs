//! SIGTERM on the real `sluice-server` process: it stops taking new
//! connections at once, lets an admin call already in flight finish
//! (and commit), then exits 0.

mod common;

use std::{
    io::{BufRead, BufReader},
    marker::PhantomData,
    process::{Child, Command, Stdio},
    sync::{Arc, mpsc},
    time::{Duration, Instant},
};

use common::fixtures;
use futures::StreamExt;
use prost::Message;
use sluice_proto::admin::v1::{
    CreateEntityRequest, Entity, GetEntityRequest, Kind, ListEventSourcesRequest,
    admin_service_client::AdminServiceClient,
};
use tokio::sync::Notify;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::http::uri::PathAndQuery,
    transport::{Channel, Endpoint},
};

/// A prost codec (the generated clients' one is not reachable from here),
/// to send a unary method's request as a stream the test holds open.
struct Prost<E, D>(PhantomData<(E, D)>);

impl<E, D> Codec for Prost<E, D>
where
    E: Message + Send + 'static,
    D: Message + Default + Send + 'static,
{
    type Encode = E;
    type Decode = D;
    type Encoder = Prost<E, ()>;
    type Decoder = Prost<(), D>;

    fn encoder(&mut self) -> Self::Encoder {
        Prost(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        Prost(PhantomData)
    }
}

impl<E: Message + Send + 'static> Encoder for Prost<E, ()> {
    type Item = E;
    type Error = Status;

    fn encode(&mut self, item: E, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

impl<D: Message + Default + Send + 'static> Decoder for Prost<(), D> {
    type Item = D;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<D>, Status> {
        D::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

/// The server process, spawned here (not through the shared harness) so
/// the test can send the signal itself and see how the process exits.
struct Spawned {
    child: Child,
    lines: mpsc::Receiver<String>,
    admin_addr: String,
}

impl Spawned {
    fn start(data_dir: &std::path::Path) -> Spawned {
        let mut child = Command::new(common::bin())
            .arg("serve")
            .args(["--admin-listen", "127.0.0.1:0"])
            .args(["--sync-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data_dir)
            .env("SLUICE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sluice-server");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[server] {line}");
                let _ = tx.send(line);
            }
        });
        let mut spawned = Spawned {
            child,
            lines,
            admin_addr: String::new(),
        };
        let marker = "admin API listening on http://";
        let line = spawned.wait_for(marker);
        spawned.admin_addr = sluice_acceptance::process::word_after(&line, marker)
            .unwrap()
            .to_string();
        spawned
    }

    /// The next log line containing `marker` (at most 60 s).
    fn wait_for(&self, marker: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(marker) => return line,
                Ok(_) => {}
                Err(_) => panic!("sluice-server did not log {marker:?} within 60 s"),
            }
        }
    }

    fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
    }

    /// Waits (at most 20 s) for the process to exit.
    async fn exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "sluice-server still runs 20 s after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn channel(addr: &str) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
}

#[tokio::test]
async fn sigterm_refuses_new_connections_and_lets_calls_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    let token = common::create_token(dir.path());
    let mut server = Spawned::start(dir.path());
    let ch = channel(&server.admin_addr).await.unwrap();
    let mut admin = AdminServiceClient::with_interceptor(
        ch.clone(),
        sluice_acceptance::server::Bearer(Some(token.clone())),
    );
    let gw = common::create(&mut admin, fixtures::gateway("drain")).await;

    // A CreateEntity whose request body the test holds open: the server
    // has the call (its headers and message) but cannot answer until the
    // body ends.
    let (body_tx, body_rx) = tokio::sync::mpsc::channel(1);
    let pulled = Arc::new(Notify::new());
    let seen = pulled.clone();
    let body = ReceiverStream::new(body_rx).inspect(move |_| seen.notify_one());
    body_tx
        .send(CreateEntityRequest {
            entity: Some(fixtures::backend(&gw.id, "in-flight", "pw-123456")),
        })
        .await
        .unwrap();
    let mut request = tonic::Request::new(body);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let mut grpc = tonic::client::Grpc::new(ch.clone());
    let call = tokio::spawn(async move {
        grpc.ready().await.unwrap();
        grpc.client_streaming(
            request,
            PathAndQuery::from_static("/sluice.admin.v1.AdminService/CreateEntity"),
            Prost::<CreateEntityRequest, Entity>(PhantomData),
        )
        .await
    });
    // The client sent the call's headers and is sending its message; a
    // call answered after that on the same connection means the server
    // has read them (HTTP/2 keeps a connection's frames in order).
    tokio::time::timeout(Duration::from_secs(20), pulled.notified())
        .await
        .expect("the request body was never read");
    admin
        .list_event_sources(ListEventSourcesRequest {})
        .await
        .unwrap();
    assert!(!call.is_finished(), "the held call finished early");

    server.sigterm();
    server.wait_for("shutting down");
    // New connections are refused from now on (the listener is closed at
    // once, not after the drain).
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(&server.admin_addr)
        .await
        .is_ok()
    {
        assert!(
            Instant::now() < deadline,
            "the admin port still accepts connections 10 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(channel(&server.admin_addr).await.is_err());
    // ...while the server still waits for the call: not because the drain
    // gave up or the process is ending.
    let so_far: Vec<String> = server.lines.try_iter().collect();
    assert!(
        !so_far
            .iter()
            .any(|l| l.contains("still open") || l.contains("stopped")),
        "the admin port closed only when the server stopped: {so_far:?}"
    );
    assert!(!call.is_finished());

    // The call in flight completes normally once its body ends.
    drop(body_tx);
    let created = tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .expect("the call in flight never finished")
        .unwrap()
        .expect("the call in flight failed after SIGTERM")
        .into_inner();
    assert_eq!(created.name, "in-flight");
    assert!(!created.id.is_empty());
    drop(admin);
    drop(ch);

    let status = server.exit().await;
    assert!(status.success(), "sluice-server exited with {status}");

    // And it was committed: a new server on the same data has it.
    let again = common::start_server(dir.path(), &[]);
    let mut admin = again.client(Some(&token)).await;
    let got = admin
        .get_entity(GetEntityRequest {
            kind: Kind::BackendCluster as i32,
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.name, "in-flight");
}
