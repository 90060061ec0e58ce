//! A raw Kafka probe: one ApiVersions request on any stream (plain TCP or
//! TLS), to tell whether a port serves a client or refuses it, without a
//! client library's retries and timeouts.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// ApiVersions v0 (header v1, client id "probe"), correlation id 1.
pub const API_VERSIONS: [u8; 19] = [
    0, 0, 0, 15, 0, 18, 0, 0, 0, 0, 0, 1, 0, 5, b'p', b'r', b'o', b'b', b'e',
];

/// Whether an ApiVersions request on `stream` is answered whole within
/// `wait` (true) or the connection ends without an answer (false).
pub async fn answered<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, wait: Duration) -> bool {
    if stream.write_all(&API_VERSIONS).await.is_err() || stream.flush().await.is_err() {
        return false;
    }
    let mut len = [0u8; 4];
    if !matches!(
        tokio::time::timeout(wait, stream.read_exact(&mut len)).await,
        Ok(Ok(_))
    ) {
        return false;
    }
    let mut body = vec![0u8; i32::from_be_bytes(len).clamp(0, 1 << 20) as usize];
    matches!(
        tokio::time::timeout(wait, stream.read_exact(&mut body)).await,
        Ok(Ok(_))
    )
}
