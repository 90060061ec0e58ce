//! A scripted data-plane node: connects to the sync endpoint with a real
//! certificate and lets a test answer each update by hand.

use std::{path::Path, time::Duration};

use sluice_proto::dataplane::v1::{
    Ack, ConfigUpdate, Hello, Nack, NodeMessage, ServerMessage,
    data_plane_sync_client::DataPlaneSyncClient, node_message, server_message,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{
    Status, Streaming,
    transport::{Certificate, ClientTlsConfig, Endpoint, Identity},
};

/// The files `sluice-server dataplane-cert issue` writes.
pub struct NodeCerts {
    /// `ca.crt`: the CA that signed the sync endpoint's certificate (PEM).
    pub ca: String,
    /// `tls.crt`: the node's certificate (PEM).
    pub cert: String,
    /// `tls.key`: the node's private key (PEM).
    pub key: String,
    /// The data_plane_certificate's id.
    pub id: String,
}

/// Issues a node certificate for `gateway` through the CLI at `bin`.
pub fn issue(bin: &Path, data_dir: &Path, gateway: &str, out: &Path) -> NodeCerts {
    let id = crate::server::run_cli(
        bin,
        &[
            "dataplane-cert",
            "issue",
            "--gateway",
            gateway,
            "--out",
            out.to_str().unwrap(),
            "--data-dir",
            data_dir.to_str().unwrap(),
        ],
    );
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
    NodeCerts {
        ca: read("ca.crt"),
        cert: read("tls.crt"),
        key: read("tls.key"),
        id: id.trim().to_string(),
    }
}

/// One open sync stream.
pub struct Node {
    tx: mpsc::Sender<NodeMessage>,
    rx: Streaming<ServerMessage>,
}

/// A hello from node `id` at `revision`.
pub fn hello(id: &str, revision: i64) -> Hello {
    Hello {
        node_id: id.into(),
        hostname: "test-host".into(),
        version: "test".into(),
        gateway_id: String::new(),
        last_applied_revision: revision,
        accepts_chunks: true,
    }
}

impl Node {
    /// Connects to `addr` with `certs` and says `hello`.
    pub async fn connect(addr: &str, certs: &NodeCerts, hello: Hello) -> Result<Node, Status> {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&certs.ca))
            .identity(Identity::from_pem(&certs.cert, &certs.key));
        let channel = Endpoint::from_shared(format!("https://{addr}"))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .map_err(|e| Status::unavailable(format!("connect: {e:?}")))?;
        let (tx, rx) = mpsc::channel(16);
        tx.send(NodeMessage {
            message: Some(node_message::Message::Hello(hello)),
        })
        .await
        .unwrap();
        let response = DataPlaneSyncClient::new(channel)
            .stream(ReceiverStream::new(rx))
            .await?;
        Ok(Node {
            tx,
            rx: response.into_inner(),
        })
    }

    /// The next update (fails the test after 10 s).
    pub async fn update(&mut self) -> ConfigUpdate {
        match self.next().await {
            Ok(Some(u)) => u,
            other => panic!("expected an update, got {other:?}"),
        }
    }

    /// The next server message: an update, the end of the stream, or its
    /// error (quota shares, sent every second when they change, and probe
    /// requests are passed over).
    pub async fn next(&mut self) -> Result<Option<ConfigUpdate>, Status> {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), self.rx.message())
                .await
                .expect("no message from the server within 10 s")?;
            match message.map(|m| m.message) {
                None => return Ok(None),
                Some(Some(server_message::Message::Update(u))) => return Ok(Some(u)),
                Some(Some(server_message::Message::QuotaShares(_))) => continue,
                Some(Some(server_message::Message::Probe(_))) => continue,
                Some(None) => panic!("empty server message"),
            }
        }
    }

    /// ACKs an update.
    pub async fn ack(&self, u: &ConfigUpdate) {
        let ack = Ack {
            nonce: u.nonce.clone(),
            revision: u.revision,
        };
        self.tx
            .send(NodeMessage {
                message: Some(node_message::Message::Ack(ack)),
            })
            .await
            .unwrap();
    }

    /// NACKs an update.
    pub async fn nack(&self, u: &ConfigUpdate, why: &str) {
        let nack = Nack {
            nonce: u.nonce.clone(),
            revision: u.revision,
            error_detail: why.into(),
        };
        self.tx
            .send(NodeMessage {
                message: Some(node_message::Message::Nack(nack)),
            })
            .await
            .unwrap();
    }

    /// Reports sampled data-plane events.
    pub async fn send_events(&self, events: Vec<sluice_proto::dataplane::v1::DataPlaneEvent>) {
        let batch = sluice_proto::dataplane::v1::DataPlaneEvents { events };
        self.tx
            .send(NodeMessage {
                message: Some(node_message::Message::Events(batch)),
            })
            .await
            .unwrap();
    }
}
