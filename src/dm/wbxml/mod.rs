//! WBXML codec for SyncML DM 1.2 (brief 7): code pages 0 SyncML, 1 MetInf, 2 DM DDF;
//! both public-id header forms on input; OPAQUE for binary data.

mod read;
mod tokens;
mod write;

pub use read::{Header, read_tree, read_with_header};
pub use tokens::{PUBLIC_ID_SYNCML_12, SYNCML_12_FPI};
pub use write::write_tree;

/// Global tokens of WBXML 1.3 that SyncML uses (section 7.1 of the brief).
pub(crate) mod global {
    pub const SWITCH_PAGE: u8 = 0x00;
    pub const END: u8 = 0x01;
    pub const ENTITY: u8 = 0x02;
    pub const STR_I: u8 = 0x03;
    pub const LITERAL: u8 = 0x04;
    pub const EXT_I_0: u8 = 0x40;
    pub const EXT_I_2: u8 = 0x42;
    pub const PI: u8 = 0x43;
    pub const LITERAL_C: u8 = 0x44;
    pub const EXT_T_0: u8 = 0x80;
    pub const EXT_T_2: u8 = 0x82;
    pub const STR_T: u8 = 0x83;
    pub const LITERAL_A: u8 = 0x84;
    pub const EXT_0: u8 = 0xC0;
    pub const EXT_2: u8 = 0xC2;
    pub const OPAQUE: u8 = 0xC3;
    pub const LITERAL_AC: u8 = 0xC4;
    /// Tag flag: the element has content (children), so an END follows.
    pub const CONTENT: u8 = 0x40;
    /// Tag flag: the element has attributes (never used by SyncML).
    pub const ATTRIBUTES: u8 = 0x80;
    /// WBXML charset for UTF-8 (IANA MIBenum 106).
    pub const UTF8: u32 = 0x6A;
}
