//! Typed SyncML DM 1.2 message model: the spec's element names as Rust types, no wire format.

mod codes;
mod command;
mod header;
mod meta;

pub use codes::{AlertCode, StatusCode};
pub use command::{
    Alert, Command, Container, Data, Exec, Item, ItemCommand, Results, Status, UnknownCommand,
};
pub use header::{Chal, Cred, Source, SyncBody, SyncHdr, SyncML, Target};
pub use meta::{Anchor, Format, Mem, Meta};

/// A message or command identifier (`MsgID`, `CmdID`, `MsgRef`, `CmdRef`).
///
/// Kept as the exact string the peer sent: references must echo it byte for byte, and the DTD
/// types these as PCDATA even though every stack we know sends decimal numbers.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Hash,
    Default,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Id(pub String);

impl Id {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The numeric value, when the id is a decimal number (ours always are).
    pub fn number(&self) -> Option<u32> {
        self.0.trim().parse().ok()
    }
}

impl From<u32> for Id {
    fn from(n: u32) -> Self {
        Id(n.to_string())
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Self {
        Id(s.to_owned())
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `CmdID` / `CmdRef`.
pub type CmdId = Id;
/// `MsgID` / `MsgRef`.
pub type MsgId = Id;

/// Normalises a device-tree URI to the `./`-prefixed form we send and compare (brief 9.9):
/// `DevInfo/Man` and `./DevInfo/Man` are the same node; `.x/Update` (a spec typo) too.
pub fn normalize_uri(uri: &str) -> String {
    let u = uri.trim();
    if u == "." || u.starts_with("./") {
        u.to_owned()
    } else if let Some(rest) = u.strip_prefix('.').or_else(|| u.strip_prefix('/')) {
        format!("./{rest}")
    } else {
        format!("./{u}")
    }
}
