//! The server session engine (sans-IO): one call per device message.
//!
//! `handle(state, inbound, now, nonces) -> (Outbound, effects)`. The caller loads the state
//! (by DevId + SessionID, or by the RespURI token), the device record and the device's queued
//! operations, calls [`handle`], sends `Outbound.body` as the HTTP response, stores
//! `Outbound.state` and applies every [`Effect`]. Protocol failures become SyncML Status codes
//! inside the reply; the engine has no error type.

mod authn;
mod device;
mod effect;
mod engine;
mod ops;
mod refusal;
mod refused;
mod replay;
mod reply;
mod state;
mod window;

pub use device::{ClientCredentials, DeviceRecord, ServerConfig, ServerCredentials};
pub use effect::{AlertRecord, Effect, NotDelivered, ResultItem, SessionLogEntry, SessionOutcome};
pub use engine::handle;
pub use ops::{BlobRef, Operation, QueuedOperation, Value, ValueData};
pub use refusal::refusal;
pub use replay::{Replay, classify as classify_replay};
pub use state::{
    BrokenGroup, CachedReply, Incoming, Outgoing, OwedStatus, Phase, Purpose, SentCommand,
    SessionState,
};
pub use window::{Window, WindowRequest, window_request};

use crate::dm::Encoding;
use crate::dm::message::SyncML;

/// One device message and everything the engine needs to answer it.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    /// The decoded message.
    pub message: &'a SyncML,
    /// The encoding it came in; the reply uses the same.
    pub encoding: Encoding,
    /// The exact HTTP entity bytes (HMAC covers them; retransmissions are recognised by them).
    pub body: &'a [u8],
    /// The `x-syncml-hmac` request header, if present.
    pub hmac_header: Option<&'a str>,
    pub device: &'a DeviceRecord,
    /// The device's pending operations, oldest first. Operations already sent in this session
    /// are skipped by id, so the caller may pass the same list every time.
    pub queue: &'a [QueuedOperation],
    /// The bytes of an object value the engine asked for ([`window_request`]): the next
    /// chunk's worth of the Large Object in flight, or the start of the next blob-valued
    /// operation. Inline values of operations in `queue` need none (an edge that keeps sent
    /// operations in the queue, like the tests', never passes one).
    pub window: Option<Window<'a>>,
    pub server: &'a ServerConfig,
}

/// The reply and the next state.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The reply as typed message (for logs and tests).
    pub message: SyncML,
    /// The encoded reply: send it as the HTTP 200 body.
    pub body: Vec<u8>,
    pub content_type: &'static str,
    /// `x-syncml-hmac` response header when the server authenticates with HMAC.
    pub hmac_header: Option<String>,
    /// Store this; pass it back with the next message of the session.
    pub state: SessionState,
    /// No further message is expected in this session.
    pub session_over: bool,
}
