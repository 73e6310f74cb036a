//! `SessionState`: everything the engine remembers between two messages of one session.
//! Serialisable so it can live in the database and any replica can take the next message.

use serde::{Deserialize, Serialize};

use crate::dm::auth::{AuthType, Nonce};
use crate::dm::large_object::{ObjectInfo, Reassembly};
use crate::dm::message::StatusCode;

/// Where the session stands (brief 1.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Phase {
    /// No message seen yet.
    #[default]
    New,
    /// Waiting for (valid) device credentials.
    Authenticating,
    /// Device authenticated; commands flow.
    Managing,
    /// The last reply ended the session.
    Ended,
}

/// What one of our commands was, so its Status/Results can be matched (by MsgRef + CmdRef).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentCommand {
    pub msg_id: u32,
    pub cmd_id: u32,
    pub purpose: Purpose,
    /// A Status came back. Entries stay until the device closes its package, so Results
    /// (which follow the Status) still find their Get.
    pub answered: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Purpose {
    /// A queued operation (or one chunk of it; `last_chunk` false means 213 is expected).
    Operation { op_id: String, last_chunk: bool },
    /// The engine's own `Get ./DevDetail/LrgObj` before it decides to chunk.
    LrgObjProbe,
    /// Sequence wrappers, our Alerts: their statuses carry no outcome.
    Other,
}

/// A Status we owe the device that did not fit in our last message (brief 1.6): it goes
/// first in our next message, in order, before anything new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwedStatus {
    pub msg_ref: String,
    pub cmd_ref: String,
    pub cmd: String,
    pub code: StatusCode,
}

/// A sequence group whose Large Object failed: its later members are held back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokenGroup {
    pub group: String,
    /// The Large Object operation that failed.
    pub after: String,
    pub retry_later: bool,
}

/// A Large Object being sent (one at a time, brief 1.13).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    pub op_id: String,
    pub info: ObjectInfo,
    /// Raw bytes already sent.
    pub offset: usize,
    /// The object goes in `Add` commands (else `Replace`).
    #[serde(default)]
    pub is_add: bool,
    /// The operation's sequence group: its later members wait for this object.
    #[serde(default)]
    pub sequence_group: Option<String>,
}

/// A Large Object being received in chunked Results for a queued operation. Its chunks are
/// staged by the edge; only the bookkeeping stays here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incoming {
    pub op_id: String,
    pub reassembly: Reassembly,
}

/// The last reply, kept so a retransmitted request (same MsgID, same bytes) gets the same
/// answer without running the engine twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedReply {
    pub device_msg_id: String,
    pub request_md5: String,
    #[serde(with = "crate::dm::large_object::serde_b64")]
    pub body: Vec<u8>,
    pub hmac_header: Option<String>,
    pub session_over: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionState {
    pub dev_id: String,
    /// The device's SessionID string, echoed verbatim.
    pub session_id: String,
    pub phase: Phase,
    pub started_at_ms: i64,
    pub last_activity_ms: i64,
    /// MsgID of our next message (starts at 1, +1 per message).
    pub next_msg_id: u32,
    pub last_device_msg_id: Option<String>,
    /// Token embedded in RespURI (routing key for any replica).
    pub resp_token: Option<String>,

    pub auth_attempts: u8,
    pub device_authenticated: bool,
    pub auth_type: Option<AuthType>,
    /// The nonce the device must use now (we issued it, this session or before).
    pub client_nonce: Option<Nonce>,
    /// The nonce we must use for our credentials (the device issued it).
    pub server_nonce: Option<Nonce>,
    /// The device answered 212 to our SyncHdr: no more server Cred needed.
    pub server_authenticated: bool,
    pub server_auth_failures: u8,

    pub device_max_msg_size: Option<u64>,
    pub device_max_obj_size: Option<u64>,
    pub large_object_support: Option<bool>,

    pub outstanding: Vec<SentCommand>,
    /// Statuses for device commands not sent yet because our message was full.
    #[serde(default)]
    pub owed_statuses: Vec<OwedStatus>,
    /// The device closed its package (Final) and our answer to it is not complete yet: its
    /// next messages (Alert 1222, without Final) ask for the rest rather than reopen it.
    #[serde(default)]
    pub device_package_closed: bool,
    /// Sequence groups interrupted by a failed Large Object in this session.
    #[serde(default)]
    pub broken_groups: Vec<BrokenGroup>,
    /// Operations already sent in this session (never sent twice).
    pub sent_ops: Vec<String>,
    pub outgoing: Option<Outgoing>,
    pub incoming: Option<Incoming>,
    pub last_reply: Option<CachedReply>,
}

impl SessionState {
    /// The key under which the state is stored: device id + SessionID. (RespURI's token is an
    /// alternative index for devices that follow RespURI.)
    pub fn key(&self) -> (&str, &str) {
        (&self.dev_id, &self.session_id)
    }

    pub fn is_over(&self) -> bool {
        self.phase == Phase::Ended
    }

    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    pub fn from_json(s: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(s)
    }
}
