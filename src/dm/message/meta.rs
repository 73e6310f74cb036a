//! `Meta` and its MetInf children (namespace `syncml:metinf`, WBXML code page 1).

/// `Meta`. Only the MetInf elements DM uses are typed; all are optional.
///
/// Canonical emit order follows the MetInf DTD: FieldLevel, Format, Type, Mark, Size, Anchor,
/// Version, NextNonce, MaxMsgSize, MaxObjSize, EMI*, Mem. Decoding accepts any order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meta {
    pub field_level: bool,
    pub format: Option<Format>,
    /// `Type`: a MIME type, an auth scheme (`syncml:auth-md5`) or a Generic Alert type.
    pub type_: Option<String>,
    pub mark: Option<String>,
    /// `Size`: bytes as transmitted (base64 length for `b64`).
    pub size: Option<u64>,
    pub anchor: Option<Anchor>,
    pub version: Option<String>,
    /// `NextNonce`: base64 text exactly as received; decode once (brief 9.3).
    pub next_nonce: Option<String>,
    pub max_msg_size: Option<u64>,
    pub max_obj_size: Option<u64>,
    pub emi: Vec<String>,
    pub mem: Option<Mem>,
}

impl Meta {
    pub fn is_empty(&self) -> bool {
        *self == Meta::default()
    }
}

/// `Anchor` (`Last?`, `Next`): a SyncML DS leftover, kept so such messages round-trip.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Anchor {
    pub last: Option<String>,
    pub next: String,
}

/// `Mem` (`SharedMem?`, `FreeMem`, `FreeID`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mem {
    pub shared_mem: bool,
    pub free_mem: Option<u64>,
    pub free_id: Option<u64>,
}

/// `Format` values (brief 1.11). Unknown strings are kept: the FUMO report Format is often
/// garbage (brief 9.10) and must not make the message undecodable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Format {
    B64,
    Bin,
    Bool,
    Chr,
    Int,
    Node,
    Null,
    Xml,
    Date,
    Time,
    Float,
    Other(String),
}

impl Format {
    pub fn parse(text: &str) -> Self {
        match text.trim() {
            "b64" => Self::B64,
            "bin" => Self::Bin,
            "bool" => Self::Bool,
            "chr" => Self::Chr,
            "int" => Self::Int,
            "node" => Self::Node,
            "null" => Self::Null,
            "xml" => Self::Xml,
            "date" => Self::Date,
            "time" => Self::Time,
            "float" => Self::Float,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::B64 => "b64",
            Self::Bin => "bin",
            Self::Bool => "bool",
            Self::Chr => "chr",
            Self::Int => "int",
            Self::Node => "node",
            Self::Null => "null",
            Self::Xml => "xml",
            Self::Date => "date",
            Self::Time => "time",
            Self::Float => "float",
            Self::Other(s) => s,
        }
    }
}
