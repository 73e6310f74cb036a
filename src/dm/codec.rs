//! Codec entry points: sniff the encoding, decode bytes to a message, encode a message.

use crate::dm::message::SyncML;
use crate::dm::tree::{message_to_tree, tree_to_message};
use crate::dm::{DecodeError, Limits, wbxml, xml};

/// The two DM encodings. The server answers in the one the device used (brief 1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Encoding {
    Xml,
    Wbxml,
}

impl Encoding {
    /// `Content-Type` for replies.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Xml => "application/vnd.syncml.dm+xml",
            Self::Wbxml => "application/vnd.syncml.dm+wbxml",
        }
    }

    /// Picks the encoding from the first meaningful byte, not the Content-Type: the libdmclient
    /// test client labels DM messages with the Data-Sync types (brief 9.15). WBXML 1.1-1.3
    /// start with a version byte 0x01-0x03; XML starts with `<`, maybe after a BOM or spaces.
    pub fn sniff(body: &[u8]) -> Option<Self> {
        if matches!(body.first(), Some(0x01..=0x03)) {
            return Some(Self::Wbxml);
        }
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        match body.iter().copied().find(|b| !b.is_ascii_whitespace())? {
            b'<' => Some(Self::Xml),
            _ => None,
        }
    }

    /// True for any `application/vnd.syncml*` content type (DM, DS, notification).
    pub fn is_syncml_content_type(content_type: &str) -> bool {
        content_type
            .trim()
            .to_ascii_lowercase()
            .starts_with("application/vnd.syncml")
    }
}

/// Decodes one message. The byte limit is checked before any parsing starts.
pub fn decode(body: &[u8], limits: &Limits) -> Result<(SyncML, Encoding), DecodeError> {
    if body.len() > limits.max_message_bytes {
        return Err(DecodeError::TooLarge {
            size: body.len(),
            limit: limits.max_message_bytes,
        });
    }
    let enc = Encoding::sniff(body)
        .ok_or_else(|| DecodeError::NotSyncMl("neither XML nor WBXML".into()))?;
    let tree = match enc {
        Encoding::Xml => xml::read_tree(body, limits)?,
        Encoding::Wbxml => wbxml::read_tree(body, limits)?,
    };
    Ok((tree_to_message(&tree)?, enc))
}

/// Encodes one message canonically (compact XML without prolog, or WBXML with the numeric
/// public id `02 A4 01 6A 00`).
pub fn encode(msg: &SyncML, enc: Encoding) -> Vec<u8> {
    let tree = message_to_tree(msg);
    match enc {
        Encoding::Xml => xml::write_tree(&tree).into_bytes(),
        Encoding::Wbxml => wbxml::write_tree(&tree),
    }
}
