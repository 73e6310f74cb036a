//! Object windows: which bytes of a stored value the engine needs for its next reply.
//!
//! Values above the inline cap live in the blob store and a Large Object in flight may be
//! far larger than one message, so the engine is never handed an object whole. Before each
//! message the edge asks [`window_request`] which bytes the reply can carry (at most one
//! message's worth), reads exactly those, and passes them in [`Inbound::window`](super::Inbound).

use super::ServerConfig;
use super::ops::QueuedOperation;
use super::state::SessionState;
use crate::dm::message::SyncML;

/// Bytes `offset..offset + bytes.len()` of operation `op_id`'s value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window<'a> {
    pub op_id: &'a str,
    pub offset: u64,
    pub bytes: &'a [u8],
}

/// What the edge should read before it runs the engine on a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRequest {
    pub op_id: String,
    pub offset: u64,
    /// At most this many bytes (fewer at the end of the value).
    pub len: u64,
}

/// The window the next reply may need: the continuation of the Large Object in flight, or
/// else the start of the first blob-valued operation not sent yet (a Large Object only
/// starts in a message of its own, so no other one can start in this reply). `None` when no
/// object bytes are needed.
pub fn window_request(
    state: &SessionState,
    message: &SyncML,
    queue: &[QueuedOperation],
    server: &ServerConfig,
) -> Option<WindowRequest> {
    // Raw bytes never exceed the encoded message they travel in.
    let max = message
        .hdr
        .meta
        .as_ref()
        .and_then(|m| m.max_msg_size)
        .or(state.device_max_msg_size)
        .unwrap_or(server.default_device_max_msg_size);
    if let Some(o) = &state.outgoing {
        let rest = (o.info.raw_len as u64).saturating_sub(o.offset as u64);
        return Some(WindowRequest {
            op_id: o.op_id.clone(),
            offset: o.offset as u64,
            len: rest.min(max),
        });
    }
    queue
        .iter()
        .filter(|q| !state.sent_ops.contains(&q.id))
        .find_map(|q| {
            let blob = q.operation.blob()?;
            Some(WindowRequest {
                op_id: q.id.clone(),
                offset: 0,
                len: blob.size.min(max),
            })
        })
}
