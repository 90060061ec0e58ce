//! Bounded decompression of record batches: a client's batch of a few
//! kilobytes must not inflate into gigabytes (the `kafka-protocol`
//! crate's own decompressors inflate without a limit, and its snappy one
//! allocates whatever length a block claims). gzip, lz4 and zstd read
//! through a limit; snappy, raw or in xerial's framing, has each block's
//! claimed length checked before it is allocated.

use std::io::Read;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use kafka_protocol::records::Compression;

/// Xerial's framing of snappy (what Java clients send): magic, version,
/// compatible version, then length-prefixed raw blocks.
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER: usize = 16;

/// The records of one batch, decompressed, at most `max` bytes.
pub(super) fn inflate(compressed: &mut Bytes, codec: Compression, max: usize) -> Result<Bytes> {
    let input = std::mem::take(compressed);
    let bounded = |reader: &mut dyn Read, what: &str| -> Result<Bytes> {
        let mut out = Vec::new();
        reader
            .take(max as u64 + 1)
            .read_to_end(&mut out)
            .with_context(|| format!("{what} records do not decompress"))?;
        if out.len() > max {
            bail!("{what} records inflate beyond {max} bytes");
        }
        Ok(Bytes::from(out))
    };
    match codec {
        Compression::None => Ok(input),
        Compression::Gzip => bounded(&mut flate2::read::GzDecoder::new(&input[..]), "gzip"),
        Compression::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::new(&input[..])?;
            // A frame may ask for a window of up to 2^27 bytes (or more with
            // a raised limit); what it may fill is bounded anyway, so the
            // window is too: at most the larger of 8 MiB and `max`.
            let log = (max.max(1 << 23).next_power_of_two().trailing_zeros()).min(27);
            decoder.window_log_max(log)?;
            bounded(&mut decoder, "zstd")
        }
        Compression::Lz4 => bounded(&mut lz4::Decoder::new(&input[..])?, "lz4"),
        Compression::Snappy => snappy(&input, max),
    }
}

/// Snappy, raw or in xerial's framing, each block's claimed length
/// checked against what is left of `max` before it is allocated.
fn snappy(input: &[u8], max: usize) -> Result<Bytes> {
    let mut decoder = snap::raw::Decoder::new();
    let mut out = Vec::new();
    let mut block = |raw: &[u8], out: &mut Vec<u8>| -> Result<()> {
        let length = snap::raw::decompress_len(raw).context("snappy block header")?;
        if out.len() + length > max {
            bail!("snappy records inflate beyond {max} bytes");
        }
        let start = out.len();
        out.resize(start + length, 0);
        decoder
            .decompress(raw, &mut out[start..])
            .context("snappy records do not decompress")?;
        Ok(())
    };
    if !input.starts_with(XERIAL_MAGIC) {
        block(input, &mut out)?;
        return Ok(Bytes::from(out));
    }
    let mut rest = input
        .get(XERIAL_HEADER..)
        .context("xerial header cut short")?;
    while !rest.is_empty() {
        let length = rest
            .get(..4)
            .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
            .context("xerial block length cut short")?;
        let raw = rest.get(4..4 + length).context("xerial block cut short")?;
        block(raw, &mut out)?;
        rest = &rest[4 + length..];
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xerial_snappy_is_read_block_by_block_and_bounded() {
        let block = snap::raw::Encoder::new()
            .compress_vec(&[7u8; 1000])
            .unwrap();
        let mut framed = XERIAL_MAGIC.to_vec();
        framed.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
        for _ in 0..3 {
            framed.extend_from_slice(&(block.len() as u32).to_be_bytes());
            framed.extend_from_slice(&block);
        }
        assert_eq!(snappy(&framed, 3000).unwrap().len(), 3000);
        assert!(snappy(&framed, 2999).is_err());
        // A block claiming more than is there is an error, not a panic.
        let mut cut = framed.clone();
        cut.truncate(framed.len() - 10);
        assert!(snappy(&cut, 1 << 20).is_err());
    }
}
