//! WBXML bytes → element tree.
//!
//! Accepts WBXML 1.1-1.3 headers with either public-id form (brief 7.1, 9.16): numeric
//! (`02 A4 01 6A 00`, libdmclient) or `0` + string-table index (`02 00 00 6A 1D "-//SYNCML//DTD
//! SyncML 1.2//EN"`, Sprint/Motorola). The identifier's value is not trusted: the Sprint test
//! capture of a DM 1.2 message names the SyncML *1.1* DTD, so the root tag decides instead.

use super::global::*;
use super::tokens::{page_namespace, tag_name};
use crate::dm::tree::{Element, TreeBuilder};
use crate::dm::{DecodeError, Limits};

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn err(msg: impl Into<String>) -> DecodeError {
    DecodeError::Wbxml(msg.into())
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| err("unexpected end of message"))?;
        self.pos += 1;
        Ok(b)
    }

    /// `mb_u_int32`: big-endian base-128, continuation bit 0x80, at most 5 bytes.
    fn mb_u_int32(&mut self) -> Result<u32, DecodeError> {
        let mut v: u32 = 0;
        for _ in 0..5 {
            let b = self.byte()?;
            v = v
                .checked_mul(128)
                .ok_or_else(|| err("mb_u_int32 overflow"))?
                | u32::from(b & 0x7F);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(err("mb_u_int32 longer than 5 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| err("length runs past the end of the message"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// An inline string: bytes up to a NUL terminator.
    fn cstr(&mut self) -> Result<&'a str, DecodeError> {
        let rest = &self.buf[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| err("unterminated inline string"))?;
        self.pos += n + 1;
        std::str::from_utf8(&rest[..n]).map_err(|_| err("inline string is not UTF-8"))
    }
}

fn table_string(table: &[u8], index: u32) -> Result<&str, DecodeError> {
    let rest = table
        .get(index as usize..)
        .ok_or_else(|| err("string table index out of range"))?;
    let n = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    std::str::from_utf8(&rest[..n]).map_err(|_| err("string table entry is not UTF-8"))
}

/// The decoded header fields, exposed for diagnostics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    /// Numeric public id, or 0 when it is given as a string.
    pub public_id: u32,
    /// The public id string when the string-table form is used.
    pub public_id_string: Option<String>,
    pub charset: u32,
}

/// Decodes a WBXML document into a tree.
pub fn read_tree(body: &[u8], limits: &Limits) -> Result<Element, DecodeError> {
    read_with_header(body, limits).map(|(_, t)| t)
}

/// Decodes a WBXML document and returns its header too.
pub fn read_with_header(body: &[u8], limits: &Limits) -> Result<(Header, Element), DecodeError> {
    let mut c = Cursor { buf: body, pos: 0 };
    let version = c.byte()?;
    if !(0x01..=0x03).contains(&version) {
        return Err(err(format!(
            "unsupported WBXML version byte {version:#04x}"
        )));
    }
    let public_id = c.mb_u_int32()?;
    let public_id_index = if public_id == 0 {
        Some(c.mb_u_int32()?)
    } else {
        None
    };
    let charset = c.mb_u_int32()?;
    // 0 = "unknown"; SyncML stacks always send UTF-8.
    if charset != UTF8 && charset != 0 {
        return Err(err(format!("unsupported charset {charset:#x}")));
    }
    let table_len = c.mb_u_int32()? as usize;
    let table = c.take(table_len)?;
    let public_id_string = match public_id_index {
        Some(i) => Some(table_string(table, i)?.to_owned()),
        None => None,
    };
    let header = Header {
        version,
        public_id,
        public_id_string,
        charset,
    };

    let mut tree = TreeBuilder::new(*limits);
    let mut page: u8 = 0;
    let mut started = false;
    while !(started && tree.depth() == 0) {
        let tok = c.byte()?;
        match tok {
            SWITCH_PAGE => page = c.byte()?,
            END => tree.end()?,
            STR_I => tree.text(c.cstr()?)?,
            STR_T => {
                let i = c.mb_u_int32()?;
                tree.text(table_string(table, i)?)?;
            }
            ENTITY => {
                let code = c.mb_u_int32()?;
                let ch = char::from_u32(code).ok_or_else(|| err("invalid ENTITY"))?;
                tree.text(ch.encode_utf8(&mut [0; 4]))?;
            }
            OPAQUE => {
                let n = c.mb_u_int32()? as usize;
                tree.opaque(c.take(n)?.to_vec())?;
            }
            LITERAL | LITERAL_C => {
                let name = table_string(table, c.mb_u_int32()?)?.to_owned();
                tree.start(page_namespace(page), &name)?;
                started = true;
                if tok == LITERAL {
                    tree.end()?;
                }
            }
            LITERAL_A | LITERAL_AC => return Err(err("attributes are not used by SyncML")),
            EXT_I_0..=EXT_I_2 | PI | EXT_T_0..=EXT_T_2 | EXT_0..=EXT_2 => {
                return Err(err(format!("unsupported global token {tok:#04x}")));
            }
            _ if tok & ATTRIBUTES != 0 => return Err(err("attributes are not used by SyncML")),
            _ => {
                let name = tag_name(page, tok & 0x3F).ok_or_else(|| {
                    err(format!(
                        "unknown tag {:#04x} on code page {page}",
                        tok & 0x3F
                    ))
                })?;
                tree.start(page_namespace(page), name)?;
                started = true;
                if tok & CONTENT == 0 {
                    tree.end()?;
                }
            }
        }
    }
    Ok((header, tree.finish()?))
}
