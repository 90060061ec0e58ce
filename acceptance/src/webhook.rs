//! A real HTTP receiver on loopback for webhook tests (hyper), whose
//! behaviour a test can change while it runs.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, sync::mpsc};

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    /// 200 OK.
    Ok,
    /// This status code.
    Status(u16),
    /// Never answers.
    Hang,
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// A running receiver.
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    rx: mpsc::UnboundedReceiver<Received>,
    behaviour: Arc<Mutex<Behaviour>>,
    every: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Listens on `addr` (port 0 for any).
    pub async fn start(addr: &str, behaviour: Behaviour) -> Receiver {
        let listener = TcpListener::bind(addr).await.expect("bind receiver");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let behaviour = Arc::new(Mutex::new(behaviour));
        let every = Arc::new(Mutex::new(Vec::new()));
        let shared = behaviour.clone();
        let log = every.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                let shared = shared.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let tx = tx.clone();
                        let shared = shared.clone();
                        let log = log.clone();
                        async move {
                            let headers = req
                                .headers()
                                .iter()
                                .map(|(k, v)| {
                                    (
                                        k.as_str().to_string(),
                                        v.to_str().unwrap_or_default().to_string(),
                                    )
                                })
                                .collect();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes().to_vec())
                                .unwrap_or_default();
                            let received = Received { headers, body };
                            log.lock().unwrap().push(received.clone());
                            let behaviour = *shared.lock().unwrap();
                            let status = match behaviour {
                                Behaviour::Hang => {
                                    std::future::pending::<()>().await;
                                    200
                                }
                                Behaviour::Ok => {
                                    let _ = tx.send(received);
                                    200
                                }
                                Behaviour::Status(code) => code,
                            };
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::new()))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            addr,
            rx,
            behaviour,
            every,
            task,
        }
    }

    /// The webhook URL.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Changes how it answers from now on.
    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    /// Every request received so far, whatever the answer, in order.
    pub fn every(&self) -> Vec<Received> {
        self.every.lock().unwrap().clone()
    }

    /// How many requests so far carried the event `id`.
    pub fn tries_of(&self, id: &str) -> usize {
        self.every()
            .iter()
            .filter(|r| r.headers.get("x-sluice-event-id").map(String::as_str) == Some(id))
            .count()
    }

    /// A request answered 200 that is waiting to be taken, if any.
    pub fn try_next(&mut self) -> Option<Received> {
        self.rx.try_recv().ok()
    }

    /// The next request answered 200 (fails the test after 20 s).
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(20), self.rx.recv())
            .await
            .expect("no webhook request within 20 s")
            .expect("receiver running")
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
