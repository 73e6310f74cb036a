//! SyncBody commands (`Command`), `Item`, item `Data`, and the `Status`/`Results` responses.

use super::{AlertCode, Chal, CmdId, Cred, Meta, MsgId, Source, StatusCode, Target};
use crate::dm::tree::Element;

/// One SyncBody command. DM uses this subset of SyncML (brief 1.8); anything else decodes as
/// [`Command::Unknown`] so the engine can answer it with a Status instead of failing the message.
// Variants differ in size (an Exec carries two Metas); commands live briefly in one message's
// Vec, so plain values beat boxing every construction site.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Add(ItemCommand),
    Alert(Alert),
    Atomic(Container),
    Copy(ItemCommand),
    Delete(ItemCommand),
    Exec(Exec),
    Get(ItemCommand),
    Replace(ItemCommand),
    Results(Results),
    Sequence(Container),
    Status(Status),
    Unknown(UnknownCommand),
}

impl Command {
    /// The element name, as used in `Status/Cmd`.
    pub fn name(&self) -> &str {
        match self {
            Self::Add(_) => "Add",
            Self::Alert(_) => "Alert",
            Self::Atomic(_) => "Atomic",
            Self::Copy(_) => "Copy",
            Self::Delete(_) => "Delete",
            Self::Exec(_) => "Exec",
            Self::Get(_) => "Get",
            Self::Replace(_) => "Replace",
            Self::Results(_) => "Results",
            Self::Sequence(_) => "Sequence",
            Self::Status(_) => "Status",
            Self::Unknown(u) => &u.name,
        }
    }

    pub fn cmd_id(&self) -> &CmdId {
        match self {
            Self::Add(c) | Self::Copy(c) | Self::Delete(c) | Self::Get(c) | Self::Replace(c) => {
                &c.cmd_id
            }
            Self::Alert(c) => &c.cmd_id,
            Self::Atomic(c) | Self::Sequence(c) => &c.cmd_id,
            Self::Exec(c) => &c.cmd_id,
            Self::Results(c) => &c.cmd_id,
            Self::Status(c) => &c.cmd_id,
            Self::Unknown(c) => &c.cmd_id,
        }
    }
}

/// Get, Replace, Add, Delete and Copy share one shape: CmdID, NoResp?, Cred?, Meta?, Item+.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ItemCommand {
    pub cmd_id: CmdId,
    pub no_resp: bool,
    pub cred: Option<Cred>,
    /// Command-level Meta. libdmclient ignores it (brief 9.6): emit Item-level Meta instead.
    pub meta: Option<Meta>,
    pub items: Vec<Item>,
}

/// `Alert`: CmdID, NoResp?, Cred?, Data (the code), Correlator?, Item*.
///
/// The RTK encoder puts Correlator before Data (brief 1.8); decoding is order-free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub cmd_id: CmdId,
    pub no_resp: bool,
    pub cred: Option<Cred>,
    pub data: AlertCode,
    pub correlator: Option<String>,
    pub items: Vec<Item>,
}

/// `Exec`: CmdID, NoResp?, Cred?, Meta?, Correlator?, Item.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Exec {
    pub cmd_id: CmdId,
    pub no_resp: bool,
    pub cred: Option<Cred>,
    pub meta: Option<Meta>,
    pub correlator: Option<String>,
    pub item: Item,
}

/// `Sequence` and `Atomic`: CmdID, NoResp?, Meta?, nested commands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Container {
    pub cmd_id: CmdId,
    pub no_resp: bool,
    pub meta: Option<Meta>,
    pub commands: Vec<Command>,
}

/// A command DM does not use (Sync, Put, Map, Search, …); kept to answer it with a Status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnknownCommand {
    pub name: String,
    pub cmd_id: CmdId,
}

/// `Status`: CmdID, MsgRef, CmdRef, Cmd, TargetRef*, SourceRef*, Cred?, Chal?, Data, Item*.
///
/// MsgRef and CmdRef are optional in the DTD but libdmclient drops a Status without them
/// (brief 9.8); the engine always fills both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub cmd_id: CmdId,
    pub msg_ref: Option<MsgId>,
    pub cmd_ref: Option<CmdId>,
    pub cmd: String,
    pub target_ref: Vec<String>,
    pub source_ref: Vec<String>,
    pub cred: Option<Cred>,
    pub chal: Option<Chal>,
    pub data: StatusCode,
    pub items: Vec<Item>,
}

/// `Results`: CmdID, MsgRef?, CmdRef, Meta?, TargetRef?, SourceRef?, Item+.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Results {
    pub cmd_id: CmdId,
    pub msg_ref: Option<MsgId>,
    pub cmd_ref: CmdId,
    pub meta: Option<Meta>,
    pub target_ref: Option<String>,
    pub source_ref: Option<String>,
    pub items: Vec<Item>,
}

/// `Item`: Target?, Source?, Meta?, Data?, MoreData?.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Item {
    pub target: Option<Target>,
    pub source: Option<Source>,
    pub meta: Option<Meta>,
    pub data: Option<Data>,
    /// `<MoreData/>`: this Item is a non-final Large Object chunk.
    pub more_data: bool,
}

/// The content of an `Item/Data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// Character data (XML text or CDATA, WBXML inline/table strings).
    Text(String),
    /// WBXML `OPAQUE` bytes (Format `bin`). XML has no binary form: the XML encoder writes
    /// these as base64 text, so XML callers should send `b64` text themselves.
    Opaque(Vec<u8>),
    /// Embedded markup, e.g. a TNDS `MgmtTree` in namespace `syncml:dmddf1.2`.
    Elements(Vec<Element>),
}

impl Data {
    /// The data as text when it is text (or opaque bytes that are UTF-8).
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(s) => Some(s),
            Self::Opaque(b) => std::str::from_utf8(b).ok(),
            Self::Elements(_) => None,
        }
    }
}
