//! `Limits`: bounds on untrusted input, fixed before decoding starts.

/// Decoder limits. The byte limit is checked before any parsing; depth and element counts are
/// checked while the tree is built, so a hostile message costs at most this much work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Largest encoded message accepted. Also what the server advertises as its `MaxMsgSize`.
    pub max_message_bytes: usize,
    /// Deepest element nesting (SyncML → SyncBody → Sequence → Replace → Item → Meta → Size is
    /// 7; TNDS payloads nest deeper).
    pub max_depth: usize,
    /// Total number of elements in one message.
    pub max_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 512 * 1024,
            max_depth: 48,
            max_elements: 20_000,
        }
    }
}
