//! Effects: what the edges must do after a message (persist, record, log). The engine itself
//! never writes anywhere.

use serde::{Deserialize, Serialize};

use crate::dm::Encoding;
use crate::dm::auth::{AuthType, Nonce};
use crate::dm::message::StatusCode;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// We issued this NextNonce to the device: store it as the device's CLCRED nonce.
    StoreClientNonce(Nonce),
    /// The (authenticated) device issued this NextNonce to us: store it as the SRVCRED nonce
    /// (it is also the nonce of the next Package 0 digest).
    StoreServerNonce(Nonce),
    DeviceAuthenticated {
        auth_type: Option<AuthType>,
    },
    DeviceAuthFailed {
        status: StatusCode,
        attempts: u8,
    },
    /// The device's credential verified only against a resynchronisation default nonce
    /// (brief 2.5): not authenticated, challenged with a fresh nonce (401 + Chal).
    DeviceResyncChallenged {
        attempts: u8,
    },
    /// The device rejected our credentials (its Status for our SyncHdr).
    ServerAuthRejected {
        status: StatusCode,
    },
    /// The device's Chal carried a `NextNonce` that is not base64. It is not adopted: our
    /// credentials stay on the previous nonce, and the device, refusing them, ends the session
    /// after the retry cap (`ServerAuthenticationRejected`).
    InvalidNextNonce,
    /// A DevInfo/DevDetail (or other read) leaf value to record in the inventory.
    Inventory {
        uri: String,
        value: String,
    },
    /// The device advertised new limits in its SyncHdr Meta.
    DeviceLimits {
        max_msg_size: Option<u64>,
        max_obj_size: Option<u64>,
    },
    /// The device's Status for a queued operation. For FUMO Exec, 202 means "accepted,
    /// report follows in a Generic Alert" (200 also happens, brief 9.22).
    OperationStatus {
        op_id: String,
        status: StatusCode,
    },
    /// The device answered the operation 401/407 in a message whose SyncHdr Status refused
    /// our credentials: it was not executed. It is still queued and goes out again in the
    /// next message of this session, under credentials over the device's new nonce; it is
    /// not an outcome of the operation.
    OperationRequeued {
        op_id: String,
        status: StatusCode,
    },
    /// Results returned for a queued Get.
    OperationResults {
        op_id: String,
        items: Vec<ResultItem>,
    },
    /// The operation went out in this reply (its first chunk, for a Large Object): it now
    /// awaits the device's Status.
    OperationSent {
        op_id: String,
    },
    /// The operation's Results could not be read (bad base64, a refused Large Object): it
    /// fails with `reason`.
    OperationResultsRejected {
        op_id: String,
        reason: String,
    },
    /// One chunk of a Large Object the device sends as Results of `op_id`, as transmitted
    /// (base64 text over XML): stage it outside the session state, in order (`seq` from 0).
    ResultChunk {
        op_id: String,
        seq: u32,
        #[serde(with = "crate::dm::large_object::serde_b64")]
        bytes: Vec<u8>,
    },
    /// The last chunk of that object arrived: publish the staged chunks as the result of
    /// `op_id`, after checking them against `chunks`, `transmitted_len` and the digest `chain`
    /// (see [`Reassembly`](crate::dm::large_object::Reassembly)).
    ResultObject {
        op_id: String,
        uri: String,
        format: Option<String>,
        mime_type: Option<String>,
        /// The staged bytes are base64 text to decode on publication.
        b64: bool,
        transmitted_len: u64,
        chunks: u32,
        chain: String,
    },
    /// The device's Large Object for `op_id` was refused or interrupted: drop what was staged.
    ResultAbandoned {
        op_id: String,
    },
    /// The operation was not (completely) delivered. `retry_later` says whether nothing of it
    /// can have been executed, so that sending it again later would be safe; whether it is
    /// sent again is the store's (and the operation owner's) decision, by `reason`.
    OperationNotDelivered {
        op_id: String,
        reason: NotDelivered,
        retry_later: bool,
    },
    /// A Generic Alert (1226) or Client Event (1224) item.
    Alert(AlertRecord),
    /// One line of the session log per exchanged message pair.
    SessionLog(SessionLogEntry),
    /// The session is over (the reply just produced is its last message).
    SessionEnded {
        outcome: SessionOutcome,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultItem {
    pub uri: String,
    pub format: Option<String>,
    pub mime_type: Option<String>,
    #[serde(with = "crate::dm::large_object::serde_b64")]
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotDelivered {
    /// Larger than the device's MaxObjSize.
    TooLargeForDevice,
    /// Needs chunking but the device does not advertise `./DevDetail/LrgObj` = true.
    LargeObjectsUnsupported,
    /// Does not fit the device's MaxMsgSize even as the smallest chunk.
    MessageTooSmall,
    /// A chunk was refused (status) or the device sent Alert 1225.
    LargeObjectFailed { status: Option<StatusCode> },
    /// The device closed its package without a Status for the command.
    NoStatus,
    /// The session was aborted (Alert 1223) before the command completed.
    SessionAborted,
    /// Held back: it follows Large Object `after` in its sequence group, and that object was
    /// not delivered. `retry_later` follows the object's.
    GroupInterrupted { after: String },
}

/// A recorded device alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// 1226 (Generic Alert) or 1224 (Client Event).
    pub code: u16,
    /// `Meta/Type` with any `Reversed-Domain-Name:` prefix and whitespace removed (brief 9.11).
    pub alert_type: Option<String>,
    /// `Item/Source/LocURI`, normalised to the `./` form (brief 9.9, 9.12).
    pub source: Option<String>,
    pub correlator: Option<String>,
    pub format: Option<String>,
    pub mark: Option<String>,
    /// The raw data text.
    pub data: Option<String>,
    /// Digits of the data parsed whatever Format said (FUMO result code, brief 9.10).
    pub result_code: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLogEntry {
    pub dev_id: String,
    pub session_id: String,
    pub device_msg_id: String,
    pub server_msg_id: u32,
    pub encoding: Encoding,
    pub request_bytes: usize,
    pub reply_bytes: usize,
    pub header_status: StatusCode,
    pub commands_received: usize,
    pub commands_sent: usize,
    pub at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionOutcome {
    Completed,
    AbortedByDevice,
    AuthenticationFailed,
    ServerAuthenticationRejected,
}
