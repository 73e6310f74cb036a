//! Large Objects (brief 3): splitting one object over several messages, and reassembling one.
//!
//! Sending rules that matter to real clients: `Size` on the Item of the first chunk only
//! (Sprint answers 400 to a repeat); `<MoreData/>` on all but the last chunk; over XML one
//! continuous base64 stream cut at 4-character boundaries (Sprint concatenates the chunks and
//! decodes once, so per-chunk padding would corrupt the object); over WBXML raw bytes in OPAQUE
//! with Format `bin`. Chunk sizes are found by measuring the encoded message, never estimated.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::dm::Encoding;
use crate::dm::message::{Data, Format, Item, Meta, Source, StatusCode, Target};

/// Bytes of an object as transmitted: base64 length over XML, raw length over WBXML. This is
/// what `Size` declares and what `MaxObjSize` bounds.
pub fn transmitted_size(raw_len: usize, enc: Encoding) -> u64 {
    match enc {
        Encoding::Xml => raw_len.div_ceil(3) as u64 * 4,
        Encoding::Wbxml => raw_len as u64,
    }
}

/// The Format an object travels in for an encoding.
pub fn wire_format(enc: Encoding) -> Format {
    match enc {
        Encoding::Xml => Format::B64,
        Encoding::Wbxml => Format::Bin,
    }
}

/// What stays the same across the chunks of one outgoing object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    pub target_uri: String,
    pub mime_type: Option<String>,
    pub raw_len: usize,
}

/// The Item for raw bytes `bytes`, which start at `offset` of the object.
///
/// Target, Format and Type are repeated in every chunk (brief 3.1); Size only when `offset`
/// is 0 and the object is chunked; MoreData unless `last`.
pub fn chunk_item(
    info: &ObjectInfo,
    bytes: &[u8],
    offset: usize,
    last: bool,
    enc: Encoding,
) -> Item {
    let data = match enc {
        // Chunks start at multiples of 3, so each encodes to exactly its part of the stream.
        Encoding::Xml => Data::Text(STANDARD.encode(bytes)),
        Encoding::Wbxml => Data::Opaque(bytes.to_vec()),
    };
    Item {
        target: Some(Target::uri(info.target_uri.clone())),
        source: None,
        meta: Some(Meta {
            format: Some(wire_format(enc)),
            type_: info.mime_type.clone(),
            size: (offset == 0 && !last).then(|| transmitted_size(info.raw_len, enc)),
            ..Meta::default()
        }),
        data: Some(data),
        more_data: !last,
    }
}

/// The planner's answer for the next chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    pub offset: usize,
    pub len: usize,
    /// The final chunk (no MoreData; the message may carry Final).
    pub last: bool,
}

/// Picks the largest next chunk whose message fits in `max_msg` encoded bytes.
///
/// `window` holds the object's bytes from `offset` on: the rest of the object, or only as much
/// of it as one message can carry (the edge reads that much from the blob store, so an object
/// is never loaded whole). `measure(item, last)` must build the complete reply around `item`
/// (statuses, header, the Replace, Final when `last`) and return its encoded length; the
/// planner only searches. Returns `None` when not even the smallest chunk fits.
pub fn plan_chunk(
    info: &ObjectInfo,
    window: &[u8],
    offset: usize,
    max_msg: usize,
    enc: Encoding,
    mut measure: impl FnMut(Item, bool) -> usize,
) -> Option<Chunk> {
    let remaining = info.raw_len.checked_sub(offset)?;
    let window = &window[..window.len().min(remaining)];
    // An object that fits in one message goes without MoreData (and, if it is the first
    // chunk, without Size either: it is then not a Large Object at all).
    if window.len() == remaining
        && measure(chunk_item(info, window, offset, true, enc), true) <= max_msg
    {
        return Some(Chunk {
            offset,
            len: remaining,
            last: true,
        });
    }
    let unit = 3;
    if remaining <= unit || window.len() < unit {
        return None;
    }
    let base = measure(chunk_item(info, &window[..unit], offset, false, enc), false);
    let avail = max_msg.checked_sub(base)?;
    let mut len = match enc {
        Encoding::Xml => unit + avail / 4 * 3,
        // The OPAQUE length prefix grows from 1 to at most 5 bytes.
        Encoding::Wbxml => unit + avail.saturating_sub(4),
    };
    len = len.min(remaining - 1).min(window.len());
    if enc == Encoding::Xml {
        len -= len % 3;
    }
    // Measure for real and shrink on overshoot (bounded: each step removes what was measured).
    while len >= unit {
        let size = measure(chunk_item(info, &window[..len], offset, false, enc), false);
        if size <= max_msg {
            return Some(Chunk {
                offset,
                len,
                last: false,
            });
        }
        let over = size - max_msg;
        let cut = match enc {
            Encoding::Xml => over.div_ceil(4) * 3,
            Encoding::Wbxml => over,
        };
        len = len.saturating_sub(cut.max(1));
        if enc == Encoding::Xml {
            len -= len % 3;
        }
    }
    None
}

/// The bookkeeping of one chunked object received from the device (Results with MoreData).
///
/// It keeps no data: each chunk goes out as an effect (the edge stages it outside the session
/// state), and only counts and a digest chain stay here, so the state does not grow with the
/// object. `chain` is `sha256(chain ‖ chunk)` over the chunks in order (starting from the empty
/// string), so the edge can prove the staged chunks are exactly the ones accepted.
///
/// Checks as a strict receiver (the codes Sprint uses, brief 3.4): Size missing on the first
/// chunk → 412; Size repeated later → 400; Size above our MaxObjSize → 413; data beyond Size,
/// or a final total different from Size → 424.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reassembly {
    pub source_uri: String,
    pub declared_size: u64,
    pub format: Option<String>,
    pub mime_type: Option<String>,
    /// Bytes as transmitted so far (base64 text counts as text).
    pub received: u64,
    /// Chunks accepted so far.
    pub chunks: u32,
    /// Lower-case hex digest chain over the accepted chunks.
    pub chain: String,
}

/// Result of feeding a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// Non-final chunk accepted: stage these transmitted bytes and answer 213 (+ Alert 1222).
    Buffered(Vec<u8>),
    /// Last chunk accepted and the sizes agree: stage these bytes, then the object is whole.
    Complete(Vec<u8>),
    /// The object is rejected with this status.
    Failed(StatusCode),
}

fn item_bytes(item: &Item) -> Vec<u8> {
    match &item.data {
        Some(Data::Text(t)) => t.as_bytes().to_vec(),
        Some(Data::Opaque(b)) => b.clone(),
        _ => Vec::new(),
    }
}

/// One link of the digest chain: `sha256(prev_hex ‖ chunk)` in lower-case hex.
pub fn chain_digest(prev: &str, chunk: &[u8]) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(prev.as_bytes());
    h.update(chunk);
    hex::encode(h.finalize())
}

impl Reassembly {
    /// Starts with the first chunk (an Item with MoreData); returns its bytes to stage.
    pub fn start(item: &Item, max_obj_size: u64) -> Result<(Self, Vec<u8>), StatusCode> {
        let meta = item.meta.clone().unwrap_or_default();
        let size = meta.size.ok_or(StatusCode::INCOMPLETE_COMMAND)?;
        if size > max_obj_size {
            return Err(StatusCode::REQUEST_ENTITY_TOO_LARGE);
        }
        let bytes = item_bytes(item);
        if bytes.len() as u64 >= size {
            return Err(StatusCode::SIZE_MISMATCH);
        }
        let r = Self {
            source_uri: item
                .source
                .as_ref()
                .map(|s: &Source| s.loc_uri.clone())
                .unwrap_or_default(),
            declared_size: size,
            format: meta.format.map(|f| f.as_str().to_owned()),
            mime_type: meta.type_,
            received: bytes.len() as u64,
            chunks: 1,
            chain: chain_digest("", &bytes),
        };
        Ok((r, bytes))
    }

    /// Feeds a following chunk.
    pub fn push(&mut self, item: &Item) -> ChunkOutcome {
        if item.meta.as_ref().is_some_and(|m| m.size.is_some()) {
            return ChunkOutcome::Failed(StatusCode::BAD_REQUEST);
        }
        let bytes = item_bytes(item);
        let got = self.received + bytes.len() as u64;
        if got > self.declared_size || (!item.more_data && got != self.declared_size) {
            return ChunkOutcome::Failed(StatusCode::SIZE_MISMATCH);
        }
        self.received = got;
        self.chunks += 1;
        self.chain = chain_digest(&self.chain, &bytes);
        if item.more_data {
            ChunkOutcome::Buffered(bytes)
        } else {
            ChunkOutcome::Complete(bytes)
        }
    }

    /// Whether the transmitted bytes are base64 text to decode when the object is published.
    pub fn is_b64(&self) -> bool {
        self.format.as_deref() == Some("b64")
    }
}

/// Decodes a base64 stream cut anywhere (a device need not cut at 4-character boundaries),
/// chunk by chunk, holding back at most 3 characters. Whitespace is skipped.
#[derive(Debug, Default)]
pub struct B64Stream {
    carry: Vec<u8>,
}

impl B64Stream {
    /// Decodes what `chunk` completes; the incomplete tail waits for the next chunk.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<u8>, base64::DecodeError> {
        self.carry
            .extend(chunk.iter().copied().filter(|b| !b.is_ascii_whitespace()));
        // Padding only ends a stream: keep everything from the first '=' for `finish`.
        let clean = self
            .carry
            .iter()
            .position(|&b| b == b'=')
            .unwrap_or(self.carry.len());
        let whole = clean - clean % 4;
        let out = STANDARD.decode(&self.carry[..whole])?;
        self.carry.drain(..whole);
        Ok(out)
    }

    /// Decodes the rest at the end of the stream.
    pub fn finish(self) -> Result<Vec<u8>, base64::DecodeError> {
        STANDARD.decode(&self.carry)
    }
}

/// Serde helper: bytes as one base64 string (JSON arrays of numbers are four times larger).
pub mod serde_b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(n: usize) -> ObjectInfo {
        ObjectInfo {
            target_uri: "./FUMO/x/Update/PkgData".into(),
            mime_type: None,
            raw_len: n,
        }
    }

    /// Measures a bare item as if it were the whole message, plus a fixed overhead.
    fn measure(enc: Encoding) -> impl FnMut(Item, bool) -> usize {
        move |item, _| {
            let tree = crate::dm::tree::from_item(&item);
            let n = match enc {
                Encoding::Xml => crate::dm::xml::write_tree(&tree).len(),
                Encoding::Wbxml => crate::dm::wbxml::write_tree(&tree).len(),
            };
            n + 100
        }
    }

    #[test]
    fn size_only_on_first_chunk_and_stream_is_continuous() {
        let payload: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let inf = info(payload.len());
        let mut off = 0;
        let mut b64 = String::new();
        let mut n = 0;
        loop {
            let c = plan_chunk(
                &inf,
                &payload[off..],
                off,
                400,
                Encoding::Xml,
                measure(Encoding::Xml),
            )
            .unwrap();
            let item = chunk_item(
                &inf,
                &payload[c.offset..c.offset + c.len],
                c.offset,
                c.last,
                Encoding::Xml,
            );
            assert_eq!(item.meta.as_ref().unwrap().size.is_some(), off == 0);
            assert_eq!(item.more_data, !c.last);
            let Some(Data::Text(t)) = &item.data else {
                panic!()
            };
            if !c.last {
                assert_eq!(t.len() % 4, 0);
                assert!(!t.contains('='), "no padding mid-stream");
            }
            b64.push_str(t);
            n += 1;
            off += c.len;
            if c.last {
                break;
            }
        }
        assert!(n > 2);
        assert_eq!(STANDARD.decode(&b64).unwrap(), payload);
        assert_eq!(
            b64.len() as u64,
            transmitted_size(payload.len(), Encoding::Xml)
        );
    }

    #[test]
    fn a_window_shorter_than_the_rest_never_ends_the_object() {
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let inf = info(payload.len());
        // Plenty of room in the message, but only 900 bytes of the object at hand.
        let c = plan_chunk(
            &inf,
            &payload[..900],
            0,
            100_000,
            Encoding::Wbxml,
            measure(Encoding::Wbxml),
        )
        .unwrap();
        assert!(!c.last);
        assert_eq!(c.len, 900);
        // The tail in a window of its own is the last chunk.
        let c = plan_chunk(
            &inf,
            &payload[2100..],
            2100,
            100_000,
            Encoding::Wbxml,
            measure(Encoding::Wbxml),
        )
        .unwrap();
        assert!(c.last);
        assert_eq!(c.len, 900);
    }

    #[test]
    fn reassembly_keeps_counts_and_a_chain_not_the_data() {
        let first = Item {
            meta: Some(Meta {
                size: Some(6),
                ..Meta::default()
            }),
            data: Some(Data::Opaque(b"abc".to_vec())),
            more_data: true,
            ..Item::default()
        };
        let (mut r, bytes) = Reassembly::start(&first, 100).unwrap();
        assert_eq!(bytes, b"abc");
        let last = Item {
            data: Some(Data::Opaque(b"def".to_vec())),
            ..Item::default()
        };
        assert_eq!(r.push(&last), ChunkOutcome::Complete(b"def".to_vec()));
        assert_eq!((r.received, r.chunks), (6, 2));
        assert_eq!(r.chain, chain_digest(&chain_digest("", b"abc"), b"def"));
        assert_ne!(r.chain, chain_digest(&chain_digest("", b"def"), b"abc"));

        let no_size = Item {
            more_data: true,
            ..Item::default()
        };
        assert_eq!(
            Reassembly::start(&no_size, 100),
            Err(StatusCode::INCOMPLETE_COMMAND)
        );
        assert_eq!(
            Reassembly::start(&first, 5),
            Err(StatusCode::REQUEST_ENTITY_TOO_LARGE)
        );
        let (mut r, _) = Reassembly::start(&first, 100).unwrap();
        assert_eq!(
            r.push(&first),
            ChunkOutcome::Failed(StatusCode::BAD_REQUEST),
            "Size repeated"
        );
        let (mut r, _) = Reassembly::start(&first, 100).unwrap();
        let short = Item {
            data: Some(Data::Opaque(b"d".to_vec())),
            ..Item::default()
        };
        assert_eq!(
            r.push(&short),
            ChunkOutcome::Failed(StatusCode::SIZE_MISMATCH)
        );
    }

    #[test]
    fn base64_decodes_across_arbitrary_cuts() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 31) as u8).collect();
        let text = STANDARD.encode(&data);
        for cut in [1, 2, 3, 5, 7, 64, 999] {
            let mut d = B64Stream::default();
            let mut out = Vec::new();
            for piece in text.as_bytes().chunks(cut) {
                out.extend(d.push(piece).unwrap());
            }
            out.extend(d.finish().unwrap());
            assert_eq!(out, data, "cut {cut}");
        }
        let mut d = B64Stream::default();
        assert!(d.push(b"ab!d").is_err(), "bad base64 is an error");
    }
}
