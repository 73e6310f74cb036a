//! The management operations queue: what the server wants done on a device.

use serde::{Deserialize, Serialize};

use crate::dm::message::Format;

/// One queued operation, identified by the caller's id (a database key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedOperation {
    pub id: String,
    pub operation: Operation,
    /// Consecutive operations with the same group are sent inside one `Sequence`, so the
    /// device executes them in order (e.g. Replace PkgURL then Exec DownloadAndUpdate).
    /// Without a group the device may execute a package's commands in any order (brief 1.5).
    pub sequence_group: Option<String>,
}

/// A management command to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    Get {
        uri: String,
    },
    Replace {
        uri: String,
        value: Value,
    },
    /// `value: None` adds an interior node (Meta Format `node`).
    Add {
        uri: String,
        value: Option<Value>,
    },
    Delete {
        uri: String,
    },
    /// `Exec` with an optional argument and a `Correlator` the device echoes in its Generic
    /// Alert report (the job key of a FUMO campaign, brief 5.3).
    Exec {
        uri: String,
        data: Option<String>,
        correlator: Option<String>,
    },
}

impl Operation {
    pub fn uri(&self) -> &str {
        match self {
            Self::Get { uri }
            | Self::Replace { uri, .. }
            | Self::Add { uri, .. }
            | Self::Delete { uri }
            | Self::Exec { uri, .. } => uri,
        }
    }

    /// Whether the command is an `Exec` (its 202 means "result later, by Generic Alert", and it
    /// is never resent without its owner's decision).
    pub fn is_exec(&self) -> bool {
        matches!(self, Self::Exec { .. })
    }

    pub fn is_get(&self) -> bool {
        matches!(self, Self::Get { .. })
    }

    /// The Exec's Correlator, which the device echoes in its Generic Alert report.
    pub fn correlator(&self) -> Option<&str> {
        match self {
            Self::Exec { correlator, .. } => correlator.as_deref(),
            _ => None,
        }
    }

    /// The blob this operation's value lives in, if it is stored by reference.
    pub fn blob(&self) -> Option<&BlobRef> {
        match self.value().map(|v| &v.data) {
            Some(ValueData::Blob(b)) => Some(b),
            _ => None,
        }
    }

    /// The value this operation carries, if any (the only part that can become a Large Object).
    pub fn value(&self) -> Option<&Value> {
        match self {
            Self::Replace { value, .. } => Some(value),
            Self::Add { value, .. } => value.as_ref(),
            _ => None,
        }
    }
}

/// A node value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Value {
    /// The node's format for text values (`chr`, `int`, `bool`, …). Bytes values travel as
    /// `b64` over XML and `bin` over WBXML whatever is set here.
    pub format: Format,
    pub mime_type: Option<String>,
    pub data: ValueData,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ValueData {
    Text(String),
    Bytes(#[serde(with = "crate::dm::large_object::serde_b64")] Vec<u8>),
    /// Bytes kept in the blob store (values above the inline cap, package payloads). The
    /// engine never holds them whole: it is handed one window per message (see
    /// [`Window`](super::Window)) and always sends them as (Large) Objects.
    Blob(BlobRef),
}

/// A value stored by reference in the blob store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    pub key: String,
    /// Raw length in bytes.
    pub size: u64,
}

impl ValueData {
    /// Raw length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            ValueData::Text(t) => t.len() as u64,
            ValueData::Bytes(b) => b.len() as u64,
            ValueData::Blob(b) => b.size,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, when they are inline.
    pub fn inline(&self) -> Option<&[u8]> {
        match self {
            ValueData::Text(t) => Some(t.as_bytes()),
            ValueData::Bytes(b) => Some(b),
            ValueData::Blob(_) => None,
        }
    }
}

impl Value {
    pub fn text(format: Format, s: impl Into<String>) -> Self {
        Self {
            format,
            mime_type: Some("text/plain".into()),
            data: ValueData::Text(s.into()),
        }
    }

    pub fn bytes(mime_type: impl Into<String>, b: Vec<u8>) -> Self {
        Self {
            format: Format::Bin,
            mime_type: Some(mime_type.into()),
            data: ValueData::Bytes(b),
        }
    }
}

impl Serialize for Format {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Format {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Format::parse(&String::deserialize(d)?))
    }
}
