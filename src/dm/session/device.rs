//! What the caller tells the engine about the device and about this server.

use serde::{Deserialize, Serialize};

use crate::dm::Limits;
use crate::dm::auth::{AuthType, Nonce, StoredSecret};

/// The device record as loaded from storage for one message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// DevInfo/DevId, the `Source/LocURI` the device sends (the primary key, brief 6.1).
    pub dev_id: String,
    /// CLCRED: how the device proves itself to us. `None` = no DM-level device auth.
    pub client: Option<ClientCredentials>,
    /// SRVCRED: how we prove ourselves to the device. `None` = no server Cred.
    pub server: Option<ServerCredentials>,
    /// `./DevDetail/LrgObj` from the inventory, if known.
    pub large_object_support: Option<bool>,
    /// The device's last advertised `MaxObjSize`, if any.
    pub max_obj_size: Option<u64>,
}

/// Device → server credentials (DMAcc AppAuth with AAuthLevel CLCRED).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCredentials {
    pub auth_type: AuthType,
    /// AAuthName; expected in `SyncHdr/Source/LocName` (libdmclient omits it).
    pub name: String,
    /// `Hash` suffices for every scheme here: basic is checked by hashing what the device sent.
    pub secret: StoredSecret,
    /// The last NextNonce we issued to this device (what its next md5/HMAC must use).
    pub nonce: Option<Nonce>,
}

/// Server → device credentials (AAuthLevel SRVCRED).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerCredentials {
    pub auth_type: AuthType,
    /// Use the DMAcc ServerID: Sprint ignores AAuthName and uses ServerID (brief 2.1).
    pub name: String,
    /// Basic needs `Cleartext`; md5, HMAC and Package 0 only need the hash.
    pub secret: StoredSecret,
    /// The last NextNonce the device issued to us (also the Package 0 nonce).
    pub nonce: Option<Nonce>,
}

/// Static server settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerConfig {
    /// Our `Source/LocURI` (the DM endpoint URL the device was provisioned with).
    pub server_uri: String,
    /// Base for `RespURI`; the engine appends a per-session token (`?s=` or `&s=`) so the
    /// HTTP layer can find the session on any replica. `None` = no RespURI.
    pub resp_uri_base: Option<String>,
    /// Decoder limits; `max_message_bytes` is also our advertised MaxMsgSize.
    pub limits: Limits,
    /// Our advertised MaxObjSize (bounds chunked Results we accept).
    pub max_obj_size: u64,
    /// Assumed device MaxMsgSize until it sends one (libdmclient's 16384 is the safe floor).
    pub default_device_max_msg_size: u64,
    /// Failed device authentication attempts allowed in one session before giving up.
    pub max_auth_attempts: u8,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            server_uri: "https://dm.example.net/dm".into(),
            resp_uri_base: None,
            limits: Limits::default(),
            max_obj_size: 4 * 1024 * 1024,
            default_device_max_msg_size: 16_384,
            max_auth_attempts: 3,
        }
    }
}
