//! A re-encoded message as a list of byte segments, so record sets pass
//! through a filter without being copied: while a decoded message is
//! encoded again, every large slice it writes that lies inside the frame
//! it was decoded from (a Produce request's or a Fetch answer's record
//! set, which the Kafka library decodes as shared `Bytes` of that frame)
//! becomes a reference to the frame, not a copy. Everything else (the
//! header, renamed topic names, counts) is written into small buffers.

use std::{io::IoSlice, ops::Range};

use bytes::{BufMut, Bytes, BytesMut, buf::UninitSlice};
use kafka_protocol::protocol::buf::ByteBufMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Slices shorter than this are copied (a reference costs a segment).
const SPLICE_MIN: usize = 512;

/// An encoded message: its segments, in order.
#[derive(Debug, Clone, Default)]
pub struct Encoded {
    parts: Vec<Bytes>,
    len: usize,
}

impl Encoded {
    /// The encoded length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was encoded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The segments, in order.
    pub fn parts(&self) -> &[Bytes] {
        &self.parts
    }

    /// The whole message in one buffer (a copy when it has several
    /// segments): for small answers and tests.
    pub fn to_bytes(&self) -> Bytes {
        match self.parts.as_slice() {
            [] => Bytes::new(),
            [one] => one.clone(),
            parts => {
                let mut out = BytesMut::with_capacity(self.len);
                for p in parts {
                    out.extend_from_slice(p);
                }
                out.freeze()
            }
        }
    }
}

/// The buffer a message is encoded into: small writes land in `current`,
/// large slices of `source` become references to it.
pub struct Segments {
    source: Bytes,
    parts: Vec<Bytes>,
    current: BytesMut,
    done: usize,
}

impl Segments {
    /// A buffer that references `source` (the frame the message being
    /// encoded was decoded from) instead of copying slices of it.
    pub fn new(source: Bytes) -> Segments {
        Segments {
            source,
            parts: Vec::new(),
            current: BytesMut::with_capacity(256),
            done: 0,
        }
    }

    /// The encoded message.
    pub fn finish(mut self) -> Encoded {
        self.flush();
        Encoded {
            len: self.done,
            parts: self.parts,
        }
    }

    fn flush(&mut self) {
        if !self.current.is_empty() {
            let part = self.current.split().freeze();
            self.done += part.len();
            self.parts.push(part);
        }
    }

    /// `src` as a slice of `source`, when it lies inside it.
    fn inside_source(&self, src: &[u8]) -> Option<Bytes> {
        let start = self.source.as_ptr() as usize;
        let end = start + self.source.len();
        let at = src.as_ptr() as usize;
        (at >= start && at + src.len() <= end).then(|| self.source.slice_ref(src))
    }
}

// SAFETY: every method forwards to `current`, a `BytesMut`, whose own
// implementation upholds `BufMut`'s contract; `put_slice` is overridden
// only to append whole segments, which never exposes uninitialised
// memory.
unsafe impl BufMut for Segments {
    fn remaining_mut(&self) -> usize {
        self.current.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller initialised `cnt` bytes of `chunk_mut`, which
        // is `current`'s.
        unsafe { self.current.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.current.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        if src.len() >= SPLICE_MIN
            && let Some(shared) = self.inside_source(src)
        {
            self.flush();
            self.done += shared.len();
            self.parts.push(shared);
        } else {
            self.current.extend_from_slice(src);
        }
    }
}

/// Kafka messages never seek back (only record batches and compression,
/// which the proxy does not re-encode, do); seeking and ranges work
/// within the segment being written, as they would in one buffer.
impl ByteBufMut for Segments {
    fn offset(&self) -> usize {
        self.done + self.current.len()
    }

    fn seek(&mut self, offset: usize) {
        self.current.resize(offset.saturating_sub(self.done), 0);
    }

    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        let from = r.start.saturating_sub(self.done).min(self.current.len());
        let to = r
            .end
            .saturating_sub(self.done)
            .clamp(from, self.current.len());
        &mut self.current[from..to]
    }
}

/// The most slices handed to one vectored write (the kernel takes 1024,
/// rustls copies what it is given on every call).
const SLICES_PER_WRITE: usize = 64;

/// Writes `message` as one Kafka frame (length prefix, then the
/// segments), with vectored writes of at most [`SLICES_PER_WRITE`]
/// slices each, so a message of many segments costs linear work.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &Encoded,
) -> std::io::Result<()> {
    let length = i32::try_from(message.len()).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "a {}-byte message does not fit a Kafka frame",
                message.len()
            ),
        )
    })?;
    let prefix = length.to_be_bytes();
    let mut slices: Vec<&[u8]> = Vec::with_capacity(message.parts.len() + 1);
    slices.push(&prefix);
    slices.extend(message.parts.iter().map(|p| p.as_ref()));
    let (mut first, mut offset) = (0, 0);
    while first < slices.len() {
        let last = (first + SLICES_PER_WRITE).min(slices.len());
        let io: Vec<IoSlice<'_>> = std::iter::once(IoSlice::new(&slices[first][offset..]))
            .chain(slices[first + 1..last].iter().map(|s| IoSlice::new(s)))
            .collect();
        let mut written = writer.write_vectored(&io).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while first < slices.len() && written > 0 {
            let left = slices[first].len() - offset;
            if written >= left {
                written -= left;
                first += 1;
                offset = 0;
            } else {
                offset += written;
                written = 0;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use kafka_protocol::{
        messages::{
            ApiKey, ProduceRequest, RequestHeader, TopicName,
            produce_request::{PartitionProduceData, TopicProduceData},
        },
        protocol::{Decodable, Encodable, StrBytes},
    };

    use super::*;

    #[tokio::test]
    async fn record_sets_are_referenced_not_copied() {
        let records = Bytes::from(vec![7u8; 4096]);
        let request = ProduceRequest::default().with_acks(1).with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("orders")))
                .with_partition_data(vec![
                    PartitionProduceData::default().with_records(Some(records)),
                ]),
        ]);
        let header = RequestHeader::default().with_request_api_key(ApiKey::Produce as i16);
        let mut frame = BytesMut::new();
        header.encode(&mut frame, 1).unwrap();
        request.encode(&mut frame, 9).unwrap();
        let frame = frame.freeze();

        let mut body = frame.clone();
        let header = RequestHeader::decode(&mut body, 1).unwrap();
        let mut decoded = ProduceRequest::decode(&mut body, 9).unwrap();
        decoded.topic_data[0].name = TopicName(StrBytes::from_static_str("team-a.orders"));
        let mut out = Segments::new(frame.clone());
        header.encode(&mut out, 1).unwrap();
        decoded.encode(&mut out, 9).unwrap();
        let encoded = out.finish();

        let records_at = decoded.topic_data[0].partition_data[0]
            .records
            .as_ref()
            .unwrap()
            .as_ptr();
        assert!(
            encoded
                .parts()
                .iter()
                .any(|p| p.as_ptr() == records_at && p.len() == 4096),
            "the record set is a reference into the request frame"
        );
        let mut expected = BytesMut::new();
        header.encode(&mut expected, 1).unwrap();
        decoded.encode(&mut expected, 9).unwrap();
        assert_eq!(
            encoded.to_bytes(),
            expected.freeze(),
            "the same bytes as one buffer"
        );

        let mut written = Vec::new();
        write_frame(&mut written, &encoded).await.unwrap();
        assert_eq!(&written[..4], &(encoded.len() as i32).to_be_bytes());
        assert_eq!(&written[4..], &encoded.to_bytes()[..]);
    }

    #[tokio::test]
    async fn a_message_of_many_segments_is_written_whole() {
        let source = Bytes::from(vec![1u8; 600 * 300]);
        let mut out = Segments::new(source.clone());
        for i in 0..300 {
            out.put_u8(i as u8);
            out.put_slice(&source[i * 600..(i + 1) * 600]);
        }
        let encoded = out.finish();
        assert_eq!(encoded.parts().len(), 600);
        let mut written = Vec::new();
        write_frame(&mut written, &encoded).await.unwrap();
        assert_eq!(written.len(), 4 + 300 * 601);
        assert_eq!(&written[4..], &encoded.to_bytes()[..]);
    }

    #[test]
    fn a_tag_from_a_later_version_is_skipped_not_fatal() {
        use kafka_protocol::messages::FetchResponse;
        // Fetch v12 with top-level tag 0 (node_endpoints, defined from
        // v16), as tansu 0.6 sends it: decoded, the tag left out (a v12
        // client cannot read it), and re-encoded well-formed.
        let mut wire = bytes::BytesMut::new();
        FetchResponse::default().encode(&mut wire, 12).unwrap();
        wire.truncate(wire.len() - 1); // the empty tagged-field count
        wire.extend_from_slice(&[1, 0, 1, 1]); // one field: tag 0, 1 byte: empty array
        let mut bytes = wire.clone().freeze();
        let decoded = FetchResponse::decode(&mut bytes, 12).expect("decodes");
        assert!(bytes.is_empty(), "the whole field was read");
        let mut again = bytes::BytesMut::new();
        decoded.encode(&mut again, 12).unwrap();
        let mut plain = bytes::BytesMut::new();
        FetchResponse::default().encode(&mut plain, 12).unwrap();
        assert_eq!(again, plain);
    }

    #[test]
    fn a_tag_beyond_i32_is_refused_not_dropped_on_the_way_out() {
        // A tag of 2^31 kept as a negative key would be counted but never
        // written: the broker would read the next field as a tag.
        let mut wire = bytes::BytesMut::new();
        ProduceRequest::default().encode(&mut wire, 9).unwrap();
        wire.truncate(wire.len() - 1); // the empty tagged-field count
        wire.extend_from_slice(&[1, 0x80, 0x80, 0x80, 0x80, 0x08, 0]);
        let mut bytes = wire.freeze();
        assert!(ProduceRequest::decode(&mut bytes, 9).is_err());
        // A tag within range is kept and written back whole.
        let mut wire = bytes::BytesMut::new();
        ProduceRequest::default().encode(&mut wire, 9).unwrap();
        wire.truncate(wire.len() - 1);
        wire.extend_from_slice(&[1, 7, 1, 42]);
        let mut bytes = wire.clone().freeze();
        let decoded = ProduceRequest::decode(&mut bytes, 9).unwrap();
        let mut again = bytes::BytesMut::new();
        decoded.encode(&mut again, 9).unwrap();
        assert_eq!(again, wire);
    }
}
