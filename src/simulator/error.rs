//! `SimError`: why a simulated session, listener or run could not go on.

use crate::dm::DecodeError;

/// Failures that stop a session (or the simulator). Protocol violations by the server that do
/// not stop the session are not errors of this type: they are recorded as text in
/// [`SessionReport::errors`](super::SessionReport::errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The HTTP request could not be made or its response not read.
    #[error("HTTP transport to {url} failed: {reason}")]
    Http { url: String, reason: String },
    /// The server answered with an HTTP status other than 200 (brief 1.1: protocol errors
    /// belong inside SyncML, so clients treat this as a transport failure).
    #[error("HTTP status {status} from {url}")]
    HttpStatus { url: String, status: u16 },
    /// The server's reply could not be decoded as SyncML.
    #[error("undecodable server message: {0}")]
    Decode(#[from] DecodeError),
    /// The conversation cannot continue (wrong SessionID, no reply to a message, a loop).
    #[error("protocol violation: {reason}")]
    Protocol { reason: String },
    /// The server kept refusing our credentials (401/407) past the retry cap, or gave up.
    #[error("server refused our credentials with {status} after {retries} retries")]
    AuthFailed { status: u16, retries: u8 },
    /// The server's own credentials (Cred or `x-syncml-hmac`) could not be verified.
    #[error("server authentication failed: {reason}")]
    ServerAuthFailed { reason: String },
    /// A message of ours cannot be made to fit the server's MaxMsgSize.
    #[error("message of {size} bytes does not fit the limit of {max} bytes")]
    MessageTooLarge { size: usize, max: usize },
    /// The server aborted the session (Alert 1223).
    #[error("session aborted by the server (Alert 1223)")]
    Aborted,
    /// The session exceeded the simulator's message cap (a loop guard).
    #[error("session still running after {limit} messages")]
    TooManyMessages { limit: u32 },
    /// Invalid simulator settings.
    #[error("invalid configuration: {reason}")]
    Config { reason: String },
    /// A socket could not be bound or used.
    #[error("I/O error: {reason}")]
    Io { reason: String },
}

impl SimError {
    pub(crate) fn io(e: &std::io::Error) -> Self {
        Self::Io {
            reason: e.to_string(),
        }
    }
}
