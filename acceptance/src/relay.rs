//! A loopback TCP relay a test can stall: bytes flow both ways until a
//! set number have come from the upstream, then nothing moves in either
//! direction until the test releases it (a node that stops reading, as
//! a frozen or overloaded host would).

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

/// A running relay.
pub struct Relay {
    /// Where clients connect (`127.0.0.1:PORT`).
    pub addr: String,
    stalled: watch::Receiver<bool>,
    stall: watch::Sender<bool>,
    release: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Relays every connection to `upstream`, stalling once `stall_after`
    /// bytes have come back from it.
    pub async fn start(upstream: &str, stall_after: u64) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay addr").to_string();
        let (stall_tx, stalled) = watch::channel(false);
        let (release, released) = watch::channel(false);
        let upstream = upstream.to_string();
        let stall = stall_tx.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                let gates = (stall_tx.subscribe(), released.clone());
                tokio::spawn(pump(
                    server_read,
                    client_write,
                    Some((stall_after, stall_tx.clone())),
                    gates.clone(),
                ));
                tokio::spawn(pump(client_read, server_write, None, gates));
            }
        });
        Relay {
            addr,
            stalled,
            stall,
            release,
            task,
        }
    }

    /// Waits (at most `timeout`) until the relay has stalled.
    pub async fn wait_stalled(&mut self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.stalled.wait_for(|s| *s))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stalls it now: the next bytes from either side are held.
    pub fn stall_now(&self) {
        let _ = self.stall.send(true);
    }

    /// Lets bytes flow again, for good.
    pub fn release(&self) {
        let _ = self.release.send(true);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` → `to`. The pump with a limit raises the stall once that
/// many bytes went through; every pump holds its bytes while the relay is
/// stalled and not yet released.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    limit: Option<(u64, watch::Sender<bool>)>,
    (stalled, mut released): (watch::Receiver<bool>, watch::Receiver<bool>),
) {
    let mut passed = 0u64;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        passed += n as u64;
        if let Some((after, stall)) = &limit
            && passed >= *after
        {
            let _ = stall.send(true);
        }
        if *stalled.borrow() && released.wait_for(|r| *r).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
