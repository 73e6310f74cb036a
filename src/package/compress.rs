//! Payload encodings: which compressor, with which settings, and their streaming decoders.
//!
//! Full images are one compressed stream. Deltas are either the `bsdiff` crate's stream
//! compressed as a whole (`bsdiff+zstd`) or the split form (see `delta::split`), whose three
//! streams are compressed by "chunk" codecs: one continuous compressor per stream that is
//! flushed at every frame boundary, so a decoder can decode frame by frame while keeping
//! the history (dictionary) of the whole stream.

use std::io::{self, Read, Write};

use liblzma::stream::{Action, Filters, LzmaOptions, PRESET_EXTREME, Status, Stream};
use serde::{Deserialize, Serialize};

/// How the payload bytes are encoded. The wire name is what the manifest carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PayloadEncoding {
    /// The new image, one zstd frame.
    #[serde(rename = "full+zstd")]
    FullZstd,
    /// The new image, one .xz stream (LZMA2, no integrity check: the manifest has sha256).
    #[serde(rename = "full+xz")]
    FullXz,
    /// The `bsdiff` crate's patch stream in one zstd frame (what `bsdiff::patch` reads).
    #[serde(rename = "bsdiff+zstd")]
    BsdiffZstd,
    /// Split bsdiff streams, each raw LZMA2 (see `delta::split`). Smallest; the default.
    #[serde(rename = "bsdiff-split+xz")]
    BsdiffSplitXz,
    /// Split bsdiff streams, each zstd. Faster to build and apply than `+xz`.
    #[serde(rename = "bsdiff-split+zstd")]
    BsdiffSplitZstd,
}

impl PayloadEncoding {
    /// True when applying needs the source image.
    pub fn is_delta(self) -> bool {
        !matches!(self, Self::FullZstd | Self::FullXz)
    }

    /// The wire name, as in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Self::FullZstd => "full+zstd",
            Self::FullXz => "full+xz",
            Self::BsdiffZstd => "bsdiff+zstd",
            Self::BsdiffSplitXz => "bsdiff-split+xz",
            Self::BsdiffSplitZstd => "bsdiff-split+zstd",
        }
    }

    /// Parses a wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::FullZstd,
            Self::FullXz,
            Self::BsdiffZstd,
            Self::BsdiffSplitXz,
            Self::BsdiffSplitZstd,
        ]
        .into_iter()
        .find(|e| e.name() == name)
    }
}

/// zstd level for every zstd payload: the strongest non-"ultra" level.
pub const ZSTD_LEVEL: i32 = 19;
/// Largest zstd window a payload may use (and a decoder accepts): 128 MiB.
pub const ZSTD_MAX_WINDOW_LOG: u32 = 27;
/// Largest LZMA2 dictionary a payload may use (and a decoder accepts): 64 MiB, as `xz -9`.
pub const LZMA_MAX_DICT_LOG: u8 = 26;

/// Smallest power-of-two exponent whose size covers `len`, within [min, max].
pub fn log2_covering(len: usize, min: u32, max: u32) -> u32 {
    let bits = usize::BITS - len.saturating_sub(1).leading_zeros();
    bits.clamp(min, max)
}

fn zstd_encoder<W: Write>(
    out: W,
    len: usize,
) -> io::Result<zstd::stream::write::Encoder<'static, W>> {
    let mut enc = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
    enc.include_checksum(false)?;
    enc.long_distance_matching(true)?;
    enc.window_log(log2_covering(len, 10, ZSTD_MAX_WINDOW_LOG))?;
    Ok(enc)
}

/// LZMA options for a stream of `len` bytes: `xz -9e` with a dictionary no larger than needed.
pub fn lzma_options(len: usize, literal_context_bits: u32) -> io::Result<LzmaOptions> {
    let mut opts = LzmaOptions::new_preset(9 | PRESET_EXTREME).map_err(io::Error::other)?;
    opts.dict_size(1 << log2_covering(len, 12, LZMA_MAX_DICT_LOG as u32));
    opts.literal_context_bits(literal_context_bits);
    Ok(opts)
}

/// LZMA2 preset of full images: `xz -6` (normal mode, bt4). Measured against the former
/// `-9e` (docs/BENCHMARKS.md, "Full packages"): the same size within 0.1 % on images up to
/// the block size, 2-3x faster per core; `-4` and below lose 2-10 %.
pub const FULL_XZ_PRESET: u32 = 6;
/// Full images are compressed in independent xz blocks of this many bytes, one per thread:
/// the encoder's memory is bounded by threads x (block + match finder), not by the image,
/// and the output depends only on the block size, never on the thread count.
pub const FULL_XZ_BLOCK: u64 = 8 << 20;

/// Threads for full-image compression: the machine's cores, at most 4 (each costs
/// ~100 MiB at the block size above).
pub fn full_threads() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4) as u32)
}

/// Compresses a whole buffer as one stream (full images and `bsdiff+zstd`).
pub fn compress_whole(encoding: PayloadEncoding, data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() / 3 + 1024);
    compress_stream(encoding, data, data.len() as u64, &mut out)?;
    Ok(out)
}

/// Compresses `input` (`len` bytes) as one stream into `out`, holding only a bounded window
/// (for `full+xz`: threads x `FULL_XZ_BLOCK`). Returns the compressed length.
pub fn compress_stream(
    encoding: PayloadEncoding,
    mut input: impl Read,
    len: u64,
    out: impl Write,
) -> io::Result<u64> {
    let mut counted = CountingWriter {
        inner: out,
        count: 0,
    };
    match encoding {
        PayloadEncoding::FullXz => {
            let mut opts = LzmaOptions::new_preset(FULL_XZ_PRESET).map_err(io::Error::other)?;
            let block = FULL_XZ_BLOCK.min(len.max(1));
            opts.dict_size(1 << log2_covering(block as usize, 12, 23));
            let mut filters = Filters::new();
            filters.lzma2(&opts);
            let stream = liblzma::stream::MtStreamBuilder::new()
                .threads(full_threads())
                .block_size(FULL_XZ_BLOCK)
                .filters(filters)
                .check(liblzma::stream::Check::None)
                .encoder()
                .map_err(io::Error::other)?;
            let mut enc = liblzma::write::XzEncoder::new_stream(&mut counted, stream);
            io::copy(&mut input, &mut enc)?;
            enc.finish()?;
        }
        _ => {
            let mut enc = zstd_encoder(&mut counted, len as usize)?;
            enc.set_pledged_src_size(Some(len))?;
            io::copy(&mut input, &mut enc)?;
            enc.finish()?;
        }
    }
    Ok(counted.count)
}

struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that decodes one whole-stream payload (`full+*` and `bsdiff+zstd`).
pub fn whole_decoder<'r, R: Read + 'r>(
    encoding: PayloadEncoding,
    input: R,
) -> io::Result<Box<dyn Read + 'r>> {
    Ok(match encoding {
        PayloadEncoding::FullXz => {
            let stream = Stream::new_stream_decoder(u64::MAX, 0).map_err(io::Error::other)?;
            Box::new(liblzma::read::XzDecoder::new_stream(input, stream))
        }
        _ => {
            let mut dec = zstd::stream::read::Decoder::new(input)?;
            dec.window_log_max(ZSTD_MAX_WINDOW_LOG)?;
            Box::new(dec.single_frame())
        }
    })
}

/// Which compressor a split stream uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkCodec {
    /// Chunks are the bytes themselves (for incompressible streams).
    Stored,
    /// Raw LZMA2 with the given dictionary size exponent, literal context bits and
    /// position bits (the last two only steer the encoder; decoders read them in-stream).
    Lzma {
        dict_log: u8,
        lc: u8,
        pb: u8,
    },
    Zstd,
}

/// A continuous compressor that emits one decodable chunk per call.
pub enum ChunkEncoder {
    Stored,
    Lzma(Stream),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl ChunkEncoder {
    /// `total_len` is the length of the whole stream; it bounds the window.
    pub fn new(codec: ChunkCodec, total_len: usize) -> io::Result<Self> {
        Ok(match codec {
            ChunkCodec::Stored => Self::Stored,
            ChunkCodec::Lzma { dict_log, lc, pb } => {
                let mut opts = lzma_options(total_len, lc.into())?;
                opts.dict_size(1 << dict_log);
                opts.position_bits(pb.into());
                let mut filters = Filters::new();
                filters.lzma2(&opts);
                Self::Lzma(Stream::new_raw_encoder(&filters).map_err(io::Error::other)?)
            }
            ChunkCodec::Zstd => Self::Zstd(zstd_encoder(Vec::new(), total_len)?),
        })
    }

    /// Compresses `data` and flushes, returning the chunk; the history is kept for the next one.
    pub fn chunk(&mut self, data: &[u8]) -> io::Result<Vec<u8>> {
        match self {
            Self::Stored => Ok(data.to_vec()),
            Self::Lzma(stream) => {
                let mut out = Vec::with_capacity(data.len() / 2 + 1024);
                let mut input = data;
                let mut flushing = false;
                loop {
                    if out.capacity() - out.len() < 64 * 1024 {
                        out.reserve(256 * 1024);
                    }
                    let before = stream.total_in();
                    let status = stream
                        .process_vec(
                            input,
                            &mut out,
                            if flushing {
                                Action::SyncFlush
                            } else {
                                Action::Run
                            },
                        )
                        .map_err(io::Error::other)?;
                    input = &input[(stream.total_in() - before) as usize..];
                    if flushing && status == Status::StreamEnd {
                        return Ok(out);
                    }
                    flushing |= input.is_empty();
                }
            }
            Self::Zstd(enc) => {
                enc.write_all(data)?;
                enc.flush()?;
                Ok(std::mem::take(enc.get_mut()))
            }
        }
    }
}

/// Decoder for the chunks of one split stream.
pub enum ChunkDecoder {
    Stored,
    Lzma(Stream),
    Zstd(zstd::stream::raw::Decoder<'static>),
}

impl ChunkDecoder {
    pub fn new(codec: ChunkCodec) -> io::Result<Self> {
        Ok(match codec {
            ChunkCodec::Stored => Self::Stored,
            ChunkCodec::Lzma { dict_log, .. } => {
                let mut opts = LzmaOptions::new();
                opts.dict_size(1 << dict_log);
                let mut filters = Filters::new();
                filters.lzma2(&opts);
                Self::Lzma(Stream::new_raw_decoder(&filters).map_err(io::Error::other)?)
            }
            ChunkCodec::Zstd => {
                let mut dec = zstd::stream::raw::Decoder::new()?;
                dec.set_parameter(zstd::stream::raw::DParameter::WindowLogMax(
                    ZSTD_MAX_WINDOW_LOG,
                ))?;
                Self::Zstd(dec)
            }
        })
    }

    /// Decodes one chunk into `out` (cleared first); fails if it decodes to more than `limit`.
    pub fn decode(&mut self, chunk: &[u8], out: &mut Vec<u8>, limit: usize) -> io::Result<()> {
        use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
        let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
        out.clear();
        let mut consumed = 0;
        loop {
            if out.len() > limit {
                return Err(invalid("chunk decodes past its limit"));
            }
            // Room for one byte beyond the limit shows an overrun without decoding further.
            out.reserve((limit + 1 - out.len()).min(256 * 1024));
            let (len_before, consumed_before) = (out.len(), consumed);
            match self {
                Self::Stored => {
                    let n = (chunk.len() - consumed).min(out.capacity() - out.len());
                    out.extend_from_slice(&chunk[consumed..consumed + n]);
                    consumed += n;
                }
                Self::Lzma(stream) => {
                    let before = stream.total_in();
                    stream
                        .process_vec(&chunk[consumed..], out, Action::Run)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    consumed += (stream.total_in() - before) as usize;
                }
                Self::Zstd(dec) => {
                    let mut input = InBuffer::around(&chunk[consumed..]);
                    let pos = out.len();
                    let mut output = OutBuffer::around_pos(out, pos);
                    dec.run(&mut input, &mut output)?;
                    consumed += input.pos;
                }
            }
            if out.len() > limit {
                return Err(invalid("chunk decodes past its limit"));
            }
            let output_full = out.len() == out.capacity();
            if consumed == chunk.len() && !output_full {
                return Ok(());
            }
            if !output_full && out.len() == len_before && consumed == consumed_before {
                return Err(invalid("chunk does not decode"));
            }
        }
    }
}

/// Reads a LEB128 unsigned varint; `Ok(None)` on a clean end of input before the first byte.
pub fn read_varint(input: &mut impl Read) -> io::Result<Option<u64>> {
    let mut value = 0u64;
    for i in 0..10 {
        let mut byte = [0u8];
        if input.read(&mut byte)? == 0 {
            if i == 0 {
                return Ok(None);
            }
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        value |= u64::from(byte[0] & 0x7f) << (7 * i);
        if byte[0] & 0x80 == 0 {
            return Ok(Some(value));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "varint too long",
    ))
}

/// Appends a LEB128 unsigned varint.
pub fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for e in [
            PayloadEncoding::FullZstd,
            PayloadEncoding::FullXz,
            PayloadEncoding::BsdiffZstd,
            PayloadEncoding::BsdiffSplitXz,
            PayloadEncoding::BsdiffSplitZstd,
        ] {
            assert_eq!(PayloadEncoding::from_name(e.name()), Some(e));
            assert_eq!(
                serde_json::to_string(&e).unwrap(),
                format!("\"{}\"", e.name())
            );
        }
        assert_eq!(PayloadEncoding::from_name("gzip"), None);
    }

    #[test]
    fn whole_streams_round_trip() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for e in [PayloadEncoding::FullZstd, PayloadEncoding::FullXz] {
            let packed = compress_whole(e, &data).unwrap();
            let mut back = Vec::new();
            whole_decoder(e, packed.as_slice())
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "{e:?}");
        }
    }

    #[test]
    fn chunks_decode_one_by_one_with_shared_history() {
        let part: Vec<u8> = (0..50_000u32).map(|i| (i * 13 % 253) as u8).collect();
        for codec in [
            ChunkCodec::Lzma {
                dict_log: 20,
                lc: 3,
                pb: 2,
            },
            ChunkCodec::Zstd,
        ] {
            let mut enc = ChunkEncoder::new(codec, 3 * part.len()).unwrap();
            let chunks: Vec<Vec<u8>> = (0..3).map(|_| enc.chunk(&part).unwrap()).collect();
            // Repeats compress to almost nothing because the history is kept.
            assert!(chunks[2].len() < 200, "{codec:?}: {}", chunks[2].len());
            let mut dec = ChunkDecoder::new(codec).unwrap();
            let mut out = Vec::new();
            for chunk in &chunks {
                dec.decode(chunk, &mut out, part.len()).unwrap();
                assert_eq!(out, part);
            }
            let mut dec = ChunkDecoder::new(codec).unwrap();
            assert!(dec.decode(&chunks[0], &mut out, part.len() - 1).is_err());
        }
    }

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut buf = Vec::new();
            write_varint(&mut buf, v);
            assert_eq!(read_varint(&mut buf.as_slice()).unwrap(), Some(v));
        }
        assert_eq!(read_varint(&mut &[][..]).unwrap(), None);
        assert!(read_varint(&mut &[0x80][..]).is_err());
    }
}
