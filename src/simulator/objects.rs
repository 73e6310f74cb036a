//! The device's own Large Object handling (brief 3): reassembling chunked Replace/Add from the
//! server with a strict receiver's checks, and cutting our own large Results into chunks.
//! Written apart from `dm::large_object` on purpose: the simulator must catch the server's
//! chunking mistakes, not share them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::dm::Encoding;
use crate::dm::message::{Data, Format, Id, Item, Meta, Results, Source, StatusCode};

/// Bytes of an Item's Data as transmitted (base64 text stays text).
pub(crate) fn transmitted(item: &Item) -> Option<Vec<u8>> {
    match &item.data {
        Some(Data::Text(t)) => Some(t.as_bytes().to_vec()),
        Some(Data::Opaque(b)) => Some(b.clone()),
        Some(Data::Elements(_)) => None,
        None => Some(Vec::new()),
    }
}

/// Turns transmitted bytes into the stored value and its stored Format: `b64` is decoded and
/// stored as `bin` (brief 1.11), opaque data is `bin`, text keeps its Format (default `chr`).
pub(crate) fn decode_value(
    wire: Vec<u8>,
    format: Option<&Format>,
    opaque: bool,
) -> Result<(String, Vec<u8>), StatusCode> {
    match format {
        Some(Format::B64) => {
            let text: Vec<u8> = wire
                .into_iter()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            STANDARD
                .decode(text)
                .map(|v| ("bin".to_owned(), v))
                .map_err(|_| StatusCode::BAD_REQUEST)
        }
        _ if opaque => Ok(("bin".to_owned(), wire)),
        Some(f) => Ok((f.as_str().to_owned(), wire)),
        None => Ok(("chr".to_owned(), wire)),
    }
}

/// A chunked object coming in from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IncomingObject {
    /// `Replace` or `Add`.
    pub cmd: String,
    pub target: String,
    /// `Size` from the first chunk, in transmitted bytes.
    pub declared: u64,
    pub format: Option<Format>,
    pub opaque: bool,
    pub mime_type: Option<String>,
    pub received: Vec<u8>,
    pub chunks: u32,
}

/// What a chunk did to the reassembly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChunkStep {
    /// Non-final chunk kept: answer 213.
    More,
    /// The object is complete: (stored format, value) to apply.
    Done(String, Vec<u8>),
    /// Rejected with this status; `why` goes into the report.
    Failed(StatusCode, String),
}

impl IncomingObject {
    /// Starts from the first chunk (an Item with MoreData). `max_obj` is our MaxObjSize.
    pub fn start(
        cmd: &str,
        target: String,
        item: &Item,
        meta: Option<&Meta>,
        max_obj: u64,
    ) -> Result<Self, (StatusCode, String)> {
        let size = meta.and_then(|m| m.size).ok_or_else(|| {
            (
                StatusCode::INCOMPLETE_COMMAND,
                "first Large Object chunk without Meta/Size (brief 3.1)".to_owned(),
            )
        })?;
        if size > max_obj {
            return Err((
                StatusCode::REQUEST_ENTITY_TOO_LARGE,
                format!("Large Object Size {size} exceeds our MaxObjSize {max_obj}"),
            ));
        }
        let received = transmitted(item).ok_or_else(|| {
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "embedded markup in a chunk".to_owned(),
            )
        })?;
        if received.len() as u64 >= size {
            return Err((
                StatusCode::SIZE_MISMATCH,
                format!(
                    "first chunk carries {} bytes but Size is {size}",
                    received.len()
                ),
            ));
        }
        Ok(Self {
            cmd: cmd.to_owned(),
            target,
            declared: size,
            format: meta.and_then(|m| m.format.clone()),
            opaque: matches!(item.data, Some(Data::Opaque(_))),
            mime_type: meta.and_then(|m| m.type_.clone()),
            received,
            chunks: 1,
        })
    }

    /// Feeds a following chunk of the same object.
    pub fn push(&mut self, item: &Item, meta: Option<&Meta>) -> ChunkStep {
        if meta.is_some_and(|m| m.size.is_some()) {
            return ChunkStep::Failed(
                StatusCode::BAD_REQUEST,
                format!("Size repeated in chunk {} (brief 3.1)", self.chunks + 1),
            );
        }
        let Some(bytes) = transmitted(item) else {
            return ChunkStep::Failed(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "embedded markup in a chunk".into(),
            );
        };
        self.chunks += 1;
        self.opaque |= matches!(item.data, Some(Data::Opaque(_)));
        self.received.extend_from_slice(&bytes);
        let got = self.received.len() as u64;
        if got > self.declared {
            return ChunkStep::Failed(
                StatusCode::SIZE_MISMATCH,
                format!("chunks exceed the declared Size {} ({got})", self.declared),
            );
        }
        if item.more_data {
            return ChunkStep::More;
        }
        if got != self.declared {
            return ChunkStep::Failed(
                StatusCode::SIZE_MISMATCH,
                format!("object of {got} bytes, Size said {}", self.declared),
            );
        }
        match decode_value(
            std::mem::take(&mut self.received),
            self.format.as_ref(),
            self.opaque,
        ) {
            Ok((f, v)) => ChunkStep::Done(f, v),
            Err(c) => ChunkStep::Failed(
                c,
                "reassembled base64 does not decode (per-chunk padding? brief 3.2)".into(),
            ),
        }
    }
}

/// One of our Results too large for a message, sent in chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutgoingObject {
    pub msg_ref: Option<Id>,
    pub cmd_ref: Id,
    pub source: String,
    pub format: Format,
    pub mime_type: Option<String>,
    /// The transmitted form: base64 text for binary over XML, else the raw bytes.
    pub wire: Vec<u8>,
    pub opaque: bool,
    pub offset: usize,
}

impl OutgoingObject {
    /// From a single-item Results (what the Get produced).
    pub fn from_results(r: &Results) -> Option<Self> {
        let [item] = r.items.as_slice() else {
            return None;
        };
        let meta = item.meta.clone().unwrap_or_default();
        Some(Self {
            msg_ref: r.msg_ref.clone(),
            cmd_ref: r.cmd_ref.clone(),
            source: item.source.as_ref()?.loc_uri.clone(),
            format: meta.format.unwrap_or(Format::Chr),
            mime_type: meta.type_,
            wire: transmitted(item)?,
            opaque: matches!(item.data, Some(Data::Opaque(_))),
            offset: 0,
        })
    }

    pub fn remaining(&self) -> usize {
        self.wire.len() - self.offset
    }

    /// Largest allowed cut at or below `len` (base64 at 4 characters, text at a UTF-8
    /// boundary); the last chunk takes the rest as it is.
    pub fn align(&self, len: usize) -> usize {
        if len >= self.remaining() {
            return self.remaining();
        }
        let mut l = len;
        if self.format == Format::B64 {
            l -= l % 4;
        } else if !self.opaque {
            while l > 0 && !is_char_start(self.wire.get(self.offset + l).copied()) {
                l -= 1;
            }
        }
        l
    }

    /// The Results for the next `len` bytes.
    pub fn chunk(&self, cmd_id: Id, len: usize) -> Results {
        let slice = &self.wire[self.offset..self.offset + len];
        let last = self.offset + len == self.wire.len();
        let data = if self.opaque {
            Data::Opaque(slice.to_vec())
        } else {
            Data::Text(String::from_utf8_lossy(slice).into_owned())
        };
        Results {
            cmd_id,
            msg_ref: self.msg_ref.clone(),
            cmd_ref: self.cmd_ref.clone(),
            items: vec![Item {
                source: Some(Source::uri(self.source.clone())),
                meta: Some(Meta {
                    format: Some(self.format.clone()),
                    type_: self.mime_type.clone(),
                    size: (self.offset == 0).then_some(self.wire.len() as u64),
                    ..Meta::default()
                }),
                data: Some(data),
                more_data: !last,
                ..Item::default()
            }],
            ..Results::default()
        }
    }
}

fn is_char_start(b: Option<u8>) -> bool {
    b.is_none_or(|b| (b as i8) >= -0x40)
}

/// The Item for a value in our Results: binary over XML as b64 text, over WBXML as opaque
/// `bin`; everything else as text with its Format.
pub(crate) fn value_item(
    uri: &str,
    format: &str,
    mime_type: Option<String>,
    value: Vec<u8>,
    enc: Encoding,
) -> Item {
    let (format, data) = match (format, enc) {
        ("bin", Encoding::Xml) => (Format::B64, Data::Text(STANDARD.encode(&value))),
        ("bin", Encoding::Wbxml) => (Format::Bin, Data::Opaque(value)),
        (f, _) => (
            Format::parse(f),
            Data::Text(String::from_utf8_lossy(&value).into_owned()),
        ),
    };
    Item {
        source: Some(Source::uri(uri)),
        meta: Some(Meta {
            format: Some(format),
            type_: mime_type,
            ..Meta::default()
        }),
        data: Some(data),
        ..Item::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(data: &str, size: Option<u64>, more: bool) -> (Item, Option<Meta>) {
        let meta = Meta {
            format: Some(Format::B64),
            size,
            ..Meta::default()
        };
        (
            Item {
                data: Some(Data::Text(data.into())),
                more_data: more,
                meta: Some(meta.clone()),
                ..Item::default()
            },
            Some(meta),
        )
    }

    #[test]
    fn reassembles_b64_stream_and_rejects_bad_sizes() {
        // "hello world!" = aGVsbG8gd29ybGQh (16 chars), cut at 8.
        let (i1, m1) = chunk("aGVsbG8g", Some(16), true);
        let mut o = IncomingObject::start("Replace", "./x".into(), &i1, m1.as_ref(), 100).unwrap();
        let (i2, m2) = chunk("d29ybGQh", None, false);
        assert_eq!(
            o.push(&i2, m2.as_ref()),
            ChunkStep::Done("bin".into(), b"hello world!".to_vec())
        );

        let no_size = chunk("aGVsbG8g", None, true);
        assert_eq!(
            IncomingObject::start("Replace", "./x".into(), &no_size.0, no_size.1.as_ref(), 100)
                .unwrap_err()
                .0,
            StatusCode::INCOMPLETE_COMMAND
        );
        assert_eq!(
            IncomingObject::start("Replace", "./x".into(), &i1, m1.as_ref(), 15)
                .unwrap_err()
                .0,
            StatusCode::REQUEST_ENTITY_TOO_LARGE
        );
        let mut o = IncomingObject::start("Replace", "./x".into(), &i1, m1.as_ref(), 100).unwrap();
        let again = chunk("d29y", Some(16), true);
        assert!(matches!(
            o.push(&again.0, again.1.as_ref()),
            ChunkStep::Failed(StatusCode::BAD_REQUEST, _)
        ));
        let mut o = IncomingObject::start("Replace", "./x".into(), &i1, m1.as_ref(), 100).unwrap();
        let short = chunk("d29y", None, false);
        assert!(matches!(
            o.push(&short.0, short.1.as_ref()),
            ChunkStep::Failed(StatusCode::SIZE_MISMATCH, _)
        ));
        // Per-chunk padding: sizes agree but the joined text is not one base64 stream.
        let (p1, pm1) = chunk("aGk=", Some(8), true);
        let mut o = IncomingObject::start("Replace", "./x".into(), &p1, pm1.as_ref(), 100).unwrap();
        let p2 = chunk("aGk=", None, false);
        assert!(matches!(
            o.push(&p2.0, p2.1.as_ref()),
            ChunkStep::Failed(StatusCode::BAD_REQUEST, _)
        ));
    }

    #[test]
    fn outgoing_cuts_b64_at_four_and_text_at_char_boundaries() {
        let r = Results {
            cmd_ref: Id::from(3),
            items: vec![value_item("./x", "bin", None, vec![7; 100], Encoding::Xml)],
            ..Results::default()
        };
        let o = OutgoingObject::from_results(&r).unwrap();
        assert_eq!(o.align(10), 8);
        let first = o.chunk(Id::from(1), 8);
        let m = first.items[0].meta.as_ref().unwrap();
        assert_eq!(m.size, Some(o.wire.len() as u64));
        assert!(first.items[0].more_data);
        let t = Results {
            items: vec![value_item(
                "./t",
                "chr",
                None,
                "aé".as_bytes().to_vec(),
                Encoding::Xml,
            )],
            ..r
        };
        let o = OutgoingObject::from_results(&t).unwrap();
        assert_eq!(o.align(2), 1, "never split the two bytes of é");
    }
}
