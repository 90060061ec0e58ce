//! Kafka's length-prefixed frames, read without trusting the length: an
//! oversize or negative prefix is refused before anything is allocated,
//! and the buffer grows only as bytes actually arrive, so a 4-byte header
//! claiming 100 MB costs nothing until 100 MB come. The reader keeps its
//! state between calls, so waiting for a frame can be cancelled (when
//! the configuration changes) and resumed without losing bytes.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame accepted by default (Kafka's `socket.request.max.bytes`).
pub const MAX_FRAME: usize = 100 * 1024 * 1024;

/// The largest frame accepted from a client that has not authenticated
/// yet (Kafka's `sasl.server.max.receive.size`): SASL exchanges are
/// small, and an unauthenticated peer may not make the proxy buffer more.
pub const PRE_AUTH_MAX_FRAME: usize = 512 * 1024;
/// The most the buffer grows by for one read: a frame's claimed length
/// is honoured in steps of this size as its bytes come in.
const READ_STEP: usize = 256 * 1024;
/// The least a read asks for, so small frames arrive in few reads.
const READ_MIN: usize = 16 * 1024;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is negative or above the limit.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Claimed length.
        len: i64,
        /// The limit.
        max: usize,
    },
    /// The connection ended inside a frame.
    #[error("connection closed mid-frame")]
    Truncated,
    /// I/O failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// One frame as it came off the wire: the length prefix and the body, in
/// one buffer, so passing it on is a single write of the original bytes.
#[derive(Debug, Clone)]
pub struct Frame(Bytes);

impl Frame {
    /// The bytes on the wire (prefix included).
    pub fn wire(&self) -> &[u8] {
        &self.0
    }

    /// The body (after the length prefix).
    pub fn body(&self) -> Bytes {
        self.0.slice(4..)
    }

    /// The body, borrowed.
    pub fn body_slice(&self) -> &[u8] {
        self.0.get(4..).unwrap_or_default()
    }
}

/// Reads frames from one peer, keeping what arrived between calls.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    max: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader of frames up to `max` bytes.
    pub fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            buf: BytesMut::new(),
            max,
        }
    }

    /// Accepts frames up to `max` bytes from now on.
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// The stream frames are read from (to write to it, say).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// How many bytes of an incomplete frame are buffered.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Waits until a whole frame is buffered (true) or the peer closed
    /// between frames (false), without taking the frame. Cancel-safe.
    pub async fn fill(&mut self) -> Result<bool, FrameError> {
        loop {
            if let Some(total) = self.complete()? {
                return Ok(total > 0);
            }
            if self.read_more().await? == 0 {
                return if self.buf.is_empty() {
                    Ok(false)
                } else {
                    Err(FrameError::Truncated)
                };
            }
        }
    }

    /// The body of the whole frame at the front of the buffer, once
    /// [`fill`](Self::fill) said one is there; it stays buffered.
    pub fn peek_body(&self) -> Option<&[u8]> {
        let total = self.complete().ok().flatten()?;
        self.buf.get(4..total)
    }

    /// The next frame; `None` when the peer closed between frames.
    /// Cancel-safe: bytes read before a cancellation stay buffered.
    pub async fn next(&mut self) -> Result<Option<Frame>, FrameError> {
        loop {
            if let Some(total) = self.complete()? {
                return Ok(Some(Frame(self.buf.split_to(total).freeze())));
            }
            if self.read_more().await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(FrameError::Truncated)
                };
            }
        }
    }

    /// The length of the whole frame at the front of the buffer, once it
    /// is all there.
    fn complete(&self) -> Result<Option<usize>, FrameError> {
        let Some(prefix) = self.buf.get(..4) else {
            return Ok(None);
        };
        let len = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        if len < 0 || len as usize > self.max {
            return Err(FrameError::TooLarge {
                len: i64::from(len),
                max: self.max,
            });
        }
        let total = 4 + len as usize;
        Ok((self.buf.len() >= total).then_some(total))
    }

    /// Reads what the peer sent, growing the buffer towards the frame's
    /// claimed size in bounded steps; 0 at end of stream.
    async fn read_more(&mut self) -> Result<usize, FrameError> {
        let want = match self.buf.get(..4) {
            Some(prefix) => {
                let len = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
                (4 + len.max(0) as usize).saturating_sub(self.buf.len())
            }
            None => 4 - self.buf.len(),
        };
        if self.buf.capacity() - self.buf.len() < want.min(READ_MIN) {
            self.buf.reserve(want.clamp(READ_MIN, READ_STEP));
        }
        match self.inner.read_buf(&mut self.buf).await {
            // TLS peers that close without close_notify (most Kafka
            // clients): an end of stream like any other. Framing still
            // tells a close between frames from a truncated frame.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
            read => Ok(read?),
        }
    }
}

/// Reads one frame from a stream that carries nothing else (one request
/// and its answer, as the metadata client does): bytes after the frame
/// are not kept.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<Frame>, FrameError> {
    FrameReader::new(reader, max).next().await
}

/// Writes a body as one frame (prefix and body in a single write).
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    body: &[u8],
) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as i32).to_be_bytes());
    out.extend_from_slice(body);
    writer.write_all(&out).await
}

/// The api key, version and correlation id at the start of a request.
pub fn request_key(frame: &[u8]) -> Option<(i16, i16, i32)> {
    let b = frame.get(..8)?;
    Some((
        i16::from_be_bytes([b[0], b[1]]),
        i16::from_be_bytes([b[2], b[3]]),
        i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
    ))
}

/// The client id of a request (header v1 and v2 carry it as a nullable
/// string after the correlation id); empty when null or absent.
pub fn request_client_id(frame: &[u8]) -> &[u8] {
    let Some(len) = frame.get(8..10) else {
        return &[];
    };
    match usize::try_from(i16::from_be_bytes([len[0], len[1]])) {
        Ok(n) => frame.get(10..10 + n).unwrap_or(&[]),
        Err(_) => &[],
    }
}

/// The correlation id at the start of a response.
pub fn response_correlation(frame: &[u8]) -> Option<i32> {
    let b = frame.get(..4)?;
    Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_bad_ones_fail_cleanly() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"hello").await.unwrap();
        let mut r = &wire[..];
        let frame = read_frame(&mut r, 16).await.unwrap().unwrap();
        assert_eq!(frame.body(), Bytes::from_static(b"hello"));
        assert_eq!(frame.wire(), &wire[..], "passed on byte for byte");
        assert!(
            read_frame(&mut r, 16).await.unwrap().is_none(),
            "clean end between frames"
        );

        // An oversized (or negative) length is refused without allocating it.
        let mut huge = &(i32::MAX).to_be_bytes()[..];
        assert!(matches!(
            read_frame(&mut huge, MAX_FRAME).await,
            Err(FrameError::TooLarge { .. })
        ));
        let mut negative = &(-5i32).to_be_bytes()[..];
        assert!(matches!(
            read_frame(&mut negative, MAX_FRAME).await,
            Err(FrameError::TooLarge { .. })
        ));
        // Cut inside the prefix or the body.
        let mut cut = &[0u8, 0][..];
        assert!(matches!(
            read_frame(&mut cut, 16).await,
            Err(FrameError::Truncated)
        ));
        let mut short = &[0u8, 0, 0, 9, 1, 2][..];
        assert!(matches!(
            read_frame(&mut short, 16).await,
            Err(FrameError::Truncated)
        ));
    }

    #[tokio::test]
    async fn an_end_without_tls_close_notify_is_an_end_between_frames_only() {
        // What rustls reports for a peer that closed without close_notify.
        let unexpected = || {
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "peer closed connection without sending TLS close_notify",
            )
        };
        let mut wire = Vec::new();
        write_frame(&mut wire, b"last").await.unwrap();
        let stream = tokio_test_stream(&wire, unexpected());
        let mut reader = FrameReader::new(stream, 16);
        assert!(reader.next().await.unwrap().is_some());
        assert!(
            reader.next().await.unwrap().is_none(),
            "a clean end between frames"
        );
        let cut = tokio_test_stream(&wire[..6], unexpected());
        assert!(matches!(
            FrameReader::new(cut, 16).next().await,
            Err(FrameError::Truncated)
        ));
    }

    /// A stream that yields `data`, then fails with `end`.
    fn tokio_test_stream(data: &[u8], end: std::io::Error) -> impl AsyncRead + Unpin {
        tokio::io::AsyncReadExt::chain(std::io::Cursor::new(data.to_vec()), Failing(Some(end)))
    }

    struct Failing(Option<std::io::Error>);

    impl AsyncRead for Failing {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            _buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(match self.0.take() {
                Some(e) => Err(e),
                None => Ok(()),
            })
        }
    }

    #[tokio::test]
    async fn frames_that_arrive_together_or_in_pieces_come_out_whole() {
        let mut wire = Vec::new();
        for body in [&b"one"[..], b"two", b""] {
            write_frame(&mut wire, body).await.unwrap();
        }
        let mut frames = FrameReader::new(&wire[..], 16);
        for body in [&b"one"[..], b"two", b""] {
            assert_eq!(frames.next().await.unwrap().unwrap().body(), body);
        }
        assert!(frames.next().await.unwrap().is_none());

        // Byte by byte, with the wait cancelled between bytes.
        let (mut tx, rx) = tokio::io::duplex(1);
        let mut frames = FrameReader::new(rx, 16);
        let writer = tokio::spawn(async move {
            tx.write_all(&[0, 0, 0, 3, b'a', b'b', b'c']).await.unwrap();
        });
        let frame = loop {
            let attempt =
                tokio::time::timeout(std::time::Duration::from_millis(1), frames.next()).await;
            if let Ok(frame) = attempt {
                break frame.unwrap().unwrap();
            }
        };
        assert_eq!(frame.body(), Bytes::from_static(b"abc"));
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn a_large_claim_costs_only_what_arrived() {
        let (mut tx, rx) = tokio::io::duplex(64);
        let mut frames = FrameReader::new(rx, MAX_FRAME);
        tx.write_all(&(100_000_000i32).to_be_bytes()).await.unwrap();
        tx.write_all(&[7; 10]).await.unwrap();
        let pending =
            tokio::time::timeout(std::time::Duration::from_millis(50), frames.next()).await;
        assert!(pending.is_err(), "still waiting for the body");
        assert_eq!(frames.buffered(), 14);
        assert!(
            frames.buf.capacity() <= READ_STEP + READ_MIN,
            "reserved {} bytes for a 100 MB claim",
            frames.buf.capacity()
        );
        drop(tx);
        assert!(matches!(frames.next().await, Err(FrameError::Truncated)));
    }

    #[test]
    fn header_fields_need_enough_bytes() {
        assert_eq!(
            request_key(&[0, 3, 0, 12, 0, 0, 0, 7, 0xff]),
            Some((3, 12, 7))
        );
        assert_eq!(request_key(&[0, 3, 0]), None);
        assert_eq!(response_correlation(&[0, 0]), None);
    }
}
