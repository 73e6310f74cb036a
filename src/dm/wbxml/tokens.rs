//! Tag token tables per code page, as data (brief 7.2-7.4).

use crate::dm::tree::Namespace;

/// Numeric public id of `-//SYNCML//DTD SyncML 1.2//EN`.
pub const PUBLIC_ID_SYNCML_12: u32 = 0x1201;
/// The formal public identifier itself (the string-table header form carries it literally).
pub const SYNCML_12_FPI: &str = "-//SYNCML//DTD SyncML 1.2//EN";

/// Code page 0, SyncML: index = token - 5. `None` marks the reserved token 0x30.
const PAGE0: &[Option<&str>] = &[
    Some("Add"),             // 05
    Some("Alert"),           // 06
    Some("Archive"),         // 07
    Some("Atomic"),          // 08
    Some("Chal"),            // 09
    Some("Cmd"),             // 0A
    Some("CmdID"),           // 0B
    Some("CmdRef"),          // 0C
    Some("Copy"),            // 0D
    Some("Cred"),            // 0E
    Some("Data"),            // 0F
    Some("Delete"),          // 10
    Some("Exec"),            // 11
    Some("Final"),           // 12
    Some("Get"),             // 13
    Some("Item"),            // 14
    Some("Lang"),            // 15
    Some("LocName"),         // 16
    Some("LocURI"),          // 17
    Some("Map"),             // 18
    Some("MapItem"),         // 19
    Some("Meta"),            // 1A
    Some("MsgID"),           // 1B
    Some("MsgRef"),          // 1C
    Some("NoResp"),          // 1D
    Some("NoResults"),       // 1E
    Some("Put"),             // 1F
    Some("Replace"),         // 20
    Some("RespURI"),         // 21
    Some("Results"),         // 22
    Some("Search"),          // 23
    Some("Sequence"),        // 24
    Some("SessionID"),       // 25
    Some("SftDel"),          // 26
    Some("Source"),          // 27
    Some("SourceRef"),       // 28
    Some("Status"),          // 29
    Some("Sync"),            // 2A
    Some("SyncBody"),        // 2B
    Some("SyncHdr"),         // 2C
    Some("SyncML"),          // 2D
    Some("Target"),          // 2E
    Some("TargetRef"),       // 2F
    None,                    // 30 reserved
    Some("VerDTD"),          // 31
    Some("VerProto"),        // 32
    Some("NumberOfChanges"), // 33
    Some("MoreData"),        // 34
    Some("Field"),           // 35
    Some("Filter"),          // 36
    Some("Record"),          // 37
    Some("FilterType"),      // 38
    Some("SourceParent"),    // 39
    Some("TargetParent"),    // 3A
    Some("Move"),            // 3B
    Some("Correlator"),      // 3C
];

/// Code page 1, MetInf.
const PAGE1: &[Option<&str>] = &[
    Some("Anchor"),     // 05
    Some("EMI"),        // 06
    Some("Format"),     // 07
    Some("FreeID"),     // 08
    Some("FreeMem"),    // 09
    Some("Last"),       // 0A
    Some("Mark"),       // 0B
    Some("MaxMsgSize"), // 0C
    Some("Mem"),        // 0D
    Some("MetInf"),     // 0E
    Some("Next"),       // 0F
    Some("NextNonce"),  // 10
    Some("SharedMem"),  // 11
    Some("Size"),       // 12
    Some("Type"),       // 13
    Some("Version"),    // 14
    Some("MaxObjSize"), // 15
    Some("FieldLevel"), // 16
];

/// Code page 2, DM DDF / TNDS (`syncml:dmddf1.2`). Note `Node` (0x24) vs `node` (0x25).
const PAGE2: &[Option<&str>] = &[
    Some("AccessType"),   // 05
    Some("ACL"),          // 06
    Some("Add"),          // 07
    Some("b64"),          // 08
    Some("bin"),          // 09
    Some("bool"),         // 0A
    Some("chr"),          // 0B
    Some("CaseSense"),    // 0C
    Some("CIS"),          // 0D
    Some("Copy"),         // 0E
    Some("CS"),           // 0F
    Some("date"),         // 10
    Some("DDFName"),      // 11
    Some("DefaultValue"), // 12
    Some("Delete"),       // 13
    Some("Description"),  // 14
    Some("DFFormat"),     // 15
    Some("DFProperties"), // 16
    Some("DFTitle"),      // 17
    Some("DFType"),       // 18
    Some("Dynamic"),      // 19
    Some("Exec"),         // 1A
    Some("float"),        // 1B
    Some("Format"),       // 1C
    Some("Get"),          // 1D
    Some("int"),          // 1E
    Some("Man"),          // 1F
    Some("MgmtTree"),     // 20
    Some("MIME"),         // 21
    Some("Mod"),          // 22
    Some("Name"),         // 23
    Some("Node"),         // 24
    Some("node"),         // 25
    Some("NodeName"),     // 26
    Some("null"),         // 27
    Some("Occurrence"),   // 28
    Some("One"),          // 29
    Some("OneOrMore"),    // 2A
    Some("OneOrN"),       // 2B
    Some("Path"),         // 2C
    Some("Permanent"),    // 2D
    Some("Replace"),      // 2E
    Some("RTProperties"), // 2F
    Some("Scope"),        // 30
    Some("Size"),         // 31
    Some("time"),         // 32
    Some("Title"),        // 33
    Some("TStamp"),       // 34
    Some("Type"),         // 35
    Some("Value"),        // 36
    Some("VerDTD"),       // 37
    Some("VerNo"),        // 38
    Some("xml"),          // 39
    Some("ZeroOrMore"),   // 3A
    Some("ZeroOrN"),      // 3B
    Some("ZeroOrOne"),    // 3C
];

fn table(page: u8) -> Option<&'static [Option<&'static str>]> {
    match page {
        0 => Some(PAGE0),
        1 => Some(PAGE1),
        2 => Some(PAGE2),
        _ => None,
    }
}

/// The namespace a code page stands for.
pub fn page_namespace(page: u8) -> Namespace {
    match page {
        1 => Namespace::MetInf,
        2 => Namespace::DmDdf,
        _ => Namespace::SyncML,
    }
}

/// The code page of a namespace, if it has one.
pub fn namespace_page(ns: &Namespace) -> Option<u8> {
    match ns {
        Namespace::SyncML => Some(0),
        Namespace::MetInf => Some(1),
        Namespace::DmDdf => Some(2),
        Namespace::Other(_) => None,
    }
}

/// Tag name of `token` (flags already stripped) on `page`.
pub fn tag_name(page: u8, token: u8) -> Option<&'static str> {
    let t = table(page)?;
    let i = usize::from(token).checked_sub(5)?;
    t.get(i).copied().flatten()
}

/// Token of `name` on `page`.
pub fn tag_token(page: u8, name: &str) -> Option<u8> {
    let t = table(page)?;
    let i = t.iter().position(|n| *n == Some(name))?;
    u8::try_from(i + 5).ok()
}
