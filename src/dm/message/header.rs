//! `SyncML`, `SyncHdr`, `SyncBody`, `Target`/`Source`, `Cred` and `Chal`.

use super::{Command, Meta, MsgId};

/// One SyncML message: `<SyncML>` = `SyncHdr` + `SyncBody`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncML {
    pub hdr: SyncHdr,
    pub body: SyncBody,
}

/// `SyncHdr`. Encoded order (RTK encoder, brief 1.3): VerDTD, VerProto, SessionID, MsgID,
/// Target, Source, RespURI?, NoResp?, Cred?, Meta?.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncHdr {
    /// `1.2` for DM 1.2.
    pub ver_dtd: String,
    /// `DM/1.2`.
    pub ver_proto: String,
    /// Echoed verbatim by the server (brief 9.1): never trimmed or renumbered.
    pub session_id: String,
    pub msg_id: MsgId,
    pub target: Target,
    pub source: Source,
    pub resp_uri: Option<String>,
    pub no_resp: bool,
    pub cred: Option<Cred>,
    pub meta: Option<Meta>,
}

/// `SyncBody`: commands, then an optional `Final` that closes the package.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncBody {
    pub commands: Vec<Command>,
    pub final_: bool,
}

/// `Target` (`LocURI`, `LocName?`) in a SyncHdr or an Item.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    pub loc_uri: String,
    pub loc_name: Option<String>,
}

/// `Source` (`LocURI`, `LocName?`) in a SyncHdr or an Item.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Source {
    pub loc_uri: String,
    pub loc_name: Option<String>,
}

impl Target {
    pub fn uri(uri: impl Into<String>) -> Self {
        Self {
            loc_uri: uri.into(),
            loc_name: None,
        }
    }
}

impl Source {
    pub fn uri(uri: impl Into<String>) -> Self {
        Self {
            loc_uri: uri.into(),
            loc_name: None,
        }
    }
}

/// `Cred`: SyncHdr only (brief 9.5). `Meta` carries Type (`syncml:auth-md5`, …) and Format `b64`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cred {
    pub meta: Option<Meta>,
    pub data: String,
}

/// `Chal`: a challenge inside a Status; Meta carries Type, Format and (md5/MAC) NextNonce.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chal {
    pub meta: Meta,
}
