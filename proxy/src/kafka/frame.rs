//! Kafka's length-prefixed frames: read without trusting the length
//! (oversize frames are refused before anything is allocated), and the
//! few header fields the proxy tracks.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame accepted by default (Kafka's `socket.request.max.bytes`).
pub const MAX_FRAME: usize = 100 * 1024 * 1024;

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
}

/// Reads one frame; `None` when the peer closed between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<Frame>, FrameError> {
    let mut prefix = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match reader.read(&mut prefix[got..]).await? {
            0 if got == 0 => return Ok(None),
            0 => return Err(FrameError::Truncated),
            n => got += n,
        }
    }
    let len = i32::from_be_bytes(prefix);
    if len < 0 || len as usize > max {
        return Err(FrameError::TooLarge {
            len: i64::from(len),
            max,
        });
    }
    let mut frame = BytesMut::with_capacity(4 + len as usize);
    frame.extend_from_slice(&prefix);
    frame.resize(4 + len as usize, 0);
    reader
        .read_exact(&mut frame[4..])
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
            _ => FrameError::Io(e),
        })?;
    Ok(Some(Frame(frame.freeze())))
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
