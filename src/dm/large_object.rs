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

/// The Item for raw bytes `payload[offset..offset + len]`.
///
/// Target, Format and Type are repeated in every chunk (brief 3.1); Size only when `offset`
/// is 0 and the object is chunked or not; MoreData unless `last`.
pub fn chunk_item(
    info: &ObjectInfo,
    payload: &[u8],
    offset: usize,
    len: usize,
    last: bool,
    enc: Encoding,
) -> Item {
    let slice = &payload[offset..offset + len];
    let data = match enc {
        // Slices start at multiples of 3, so each encodes to exactly its part of the stream.
        Encoding::Xml => Data::Text(STANDARD.encode(slice)),
        Encoding::Wbxml => Data::Opaque(slice.to_vec()),
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
/// `measure(item, last)` must build the complete reply around `item` (statuses, header, the
/// Replace, Final when `last`) and return its encoded length; the planner only searches.
/// Returns `None` when not even the smallest chunk fits.
pub fn plan_chunk(
    info: &ObjectInfo,
    payload: &[u8],
    offset: usize,
    max_msg: usize,
    enc: Encoding,
    mut measure: impl FnMut(Item, bool) -> usize,
) -> Option<Chunk> {
    let remaining = payload.len() - offset;
    let whole = chunk_item(info, payload, offset, remaining, true, enc);
    // An object that fits in one message goes without MoreData (and, if it is the first
    // chunk, without Size either: it is then not a Large Object at all).
    if measure(whole, true) <= max_msg {
        return Some(Chunk {
            offset,
            len: remaining,
            last: true,
        });
    }
    if remaining <= 3 {
        return None;
    }
    let unit = 3;
    let base = measure(chunk_item(info, payload, offset, unit, false, enc), false);
    let avail = max_msg.checked_sub(base)?;
    let mut len = match enc {
        Encoding::Xml => unit + avail / 4 * 3,
        // The OPAQUE length prefix grows from 1 to at most 5 bytes.
        Encoding::Wbxml => unit + avail.saturating_sub(4),
    };
    len = len.min(remaining - 1);
    if enc == Encoding::Xml {
        len -= len % 3;
    }
    // Measure for real and shrink on overshoot (bounded: each step removes what was measured).
    while len >= unit {
        let size = measure(chunk_item(info, payload, offset, len, false, enc), false);
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

/// Reassembly of one chunked object received from the device (Results with MoreData).
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
    /// Bytes as transmitted so far (base64 text stays text until the end).
    #[serde(with = "serde_b64")]
    pub received: Vec<u8>,
}

/// Result of feeding a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// Non-final chunk buffered: answer 213 (+ Alert 1222).
    Buffered,
    /// Last chunk arrived and sizes agree: the decoded object value.
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

impl Reassembly {
    /// Starts with the first chunk (an Item with MoreData).
    pub fn start(item: &Item, max_obj_size: u64) -> Result<Self, StatusCode> {
        let meta = item.meta.clone().unwrap_or_default();
        let size = meta.size.ok_or(StatusCode::INCOMPLETE_COMMAND)?;
        if size > max_obj_size {
            return Err(StatusCode::REQUEST_ENTITY_TOO_LARGE);
        }
        let received = item_bytes(item);
        if received.len() as u64 >= size {
            return Err(StatusCode::SIZE_MISMATCH);
        }
        Ok(Self {
            source_uri: item
                .source
                .as_ref()
                .map(|s: &Source| s.loc_uri.clone())
                .unwrap_or_default(),
            declared_size: size,
            format: meta.format.map(|f| f.as_str().to_owned()),
            mime_type: meta.type_,
            received,
        })
    }

    /// Feeds a following chunk.
    pub fn push(&mut self, item: &Item) -> ChunkOutcome {
        if item.meta.as_ref().is_some_and(|m| m.size.is_some()) {
            return ChunkOutcome::Failed(StatusCode::BAD_REQUEST);
        }
        self.received.extend_from_slice(&item_bytes(item));
        let got = self.received.len() as u64;
        if got > self.declared_size || (!item.more_data && got != self.declared_size) {
            return ChunkOutcome::Failed(StatusCode::SIZE_MISMATCH);
        }
        if item.more_data {
            return ChunkOutcome::Buffered;
        }
        if self.format.as_deref() == Some("b64") {
            match STANDARD.decode(&self.received) {
                Ok(v) => ChunkOutcome::Complete(v),
                Err(_) => ChunkOutcome::Failed(StatusCode::BAD_REQUEST),
            }
        } else {
            ChunkOutcome::Complete(std::mem::take(&mut self.received))
        }
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
                &payload,
                off,
                400,
                Encoding::Xml,
                measure(Encoding::Xml),
            )
            .unwrap();
            let item = chunk_item(&inf, &payload, c.offset, c.len, c.last, Encoding::Xml);
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
    fn reassembly_checks_sizes() {
        let first = Item {
            meta: Some(Meta {
                size: Some(6),
                ..Meta::default()
            }),
            data: Some(Data::Opaque(b"abc".to_vec())),
            more_data: true,
            ..Item::default()
        };
        let mut r = Reassembly::start(&first, 100).unwrap();
        let last = Item {
            data: Some(Data::Opaque(b"def".to_vec())),
            ..Item::default()
        };
        assert_eq!(r.push(&last), ChunkOutcome::Complete(b"abcdef".to_vec()));

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
        let mut r = Reassembly::start(&first, 100).unwrap();
        assert_eq!(
            r.push(&first),
            ChunkOutcome::Failed(StatusCode::BAD_REQUEST),
            "Size repeated"
        );
        let mut r = Reassembly::start(&first, 100).unwrap();
        let short = Item {
            data: Some(Data::Opaque(b"d".to_vec())),
            ..Item::default()
        };
        assert_eq!(
            r.push(&short),
            ChunkOutcome::Failed(StatusCode::SIZE_MISMATCH)
        );
    }
}
