//! `DecodeError`: why bytes could not become a [`SyncML`](crate::dm::message::SyncML) message.

/// A message that could not be decoded at all. The engine never sees these: there is no
/// SyncHdr to answer, so the HTTP layer answers with [`DecodeError::http_status`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("element nesting deeper than {limit}")]
    TooDeep { limit: usize },
    #[error("more than {limit} elements")]
    TooManyElements { limit: usize },
    #[error("not a SyncML message: {0}")]
    NotSyncMl(String),
    #[error("malformed XML: {0}")]
    Xml(String),
    #[error("malformed WBXML: {0}")]
    Wbxml(String),
    #[error("required element {0} is missing")]
    MissingElement(&'static str),
}

impl DecodeError {
    /// HTTP status for the transport layer: 413 for oversized bodies, 400 for everything else.
    /// (Real clients treat any non-200 as a transport failure, brief 1.1; these are messages no
    /// SyncML answer can be built for.)
    pub fn http_status(&self) -> u16 {
        match self {
            Self::TooLarge { .. } => 413,
            _ => 400,
        }
    }

    /// True when a configured [`Limits`](crate::dm::Limits) bound was hit.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            Self::TooLarge { .. } | Self::TooDeep { .. } | Self::TooManyElements { .. }
        )
    }
}
