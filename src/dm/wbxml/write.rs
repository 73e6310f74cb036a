//! Element tree → WBXML bytes, canonical: header `02 A4 01 6A 00` (WBXML 1.2, numeric public
//! id 0x1201, UTF-8, empty string table unless foreign tags need LITERALs), STR_I strings,
//! OPAQUE for binary, and code-page switches emitted lazily, only when the next tag needs
//! another page (which reproduces the `01 00 00` after a Meta seen in real captures, brief 7.3).

use super::global::*;
use super::tokens::{PUBLIC_ID_SYNCML_12, namespace_page, tag_token};
use crate::dm::tree::{Element, Node};

/// Encodes a tree.
pub fn write_tree(root: &Element) -> Vec<u8> {
    let mut literals: Vec<String> = Vec::new();
    collect_literals(root, &mut literals);
    let mut table = Vec::new();
    let mut offsets = Vec::with_capacity(literals.len());
    for l in &literals {
        offsets.push(table.len() as u32);
        table.extend_from_slice(l.as_bytes());
        table.push(0);
    }

    let mut out = Vec::with_capacity(1024);
    out.push(0x02);
    mb_u_int32(&mut out, PUBLIC_ID_SYNCML_12);
    mb_u_int32(&mut out, UTF8);
    mb_u_int32(&mut out, table.len() as u32);
    out.extend_from_slice(&table);
    let mut w = Writer {
        out,
        page: 0,
        literals: &literals,
        offsets: &offsets,
    };
    w.element(root);
    w.out
}

fn token_of(e: &Element) -> Option<(u8, u8)> {
    let page = namespace_page(&e.ns)?;
    Some((page, tag_token(page, &e.name)?))
}

fn collect_literals(e: &Element, acc: &mut Vec<String>) {
    if token_of(e).is_none() && !acc.contains(&e.name) {
        acc.push(e.name.clone());
    }
    for c in &e.children {
        if let Node::Element(c) = c {
            collect_literals(c, acc);
        }
    }
}

/// Appends a `mb_u_int32`.
pub(crate) fn mb_u_int32(out: &mut Vec<u8>, v: u32) {
    let mut groups = [0u8; 5];
    let mut n = 0;
    let mut v = v;
    loop {
        groups[n] = (v & 0x7F) as u8;
        n += 1;
        v >>= 7;
        if v == 0 {
            break;
        }
    }
    for i in (0..n).rev() {
        out.push(if i > 0 { groups[i] | 0x80 } else { groups[i] });
    }
}

struct Writer<'a> {
    out: Vec<u8>,
    page: u8,
    literals: &'a [String],
    offsets: &'a [u32],
}

impl Writer<'_> {
    fn element(&mut self, e: &Element) {
        let content = if e.children.is_empty() { 0 } else { CONTENT };
        match token_of(e) {
            Some((page, tok)) => {
                if page != self.page {
                    self.out.extend_from_slice(&[SWITCH_PAGE, page]);
                    self.page = page;
                }
                self.out.push(tok | content);
            }
            None => {
                let i = self.literals.iter().position(|l| *l == e.name).unwrap_or(0);
                self.out
                    .push(if content != 0 { LITERAL_C } else { LITERAL });
                mb_u_int32(&mut self.out, self.offsets.get(i).copied().unwrap_or(0));
            }
        }
        if content == 0 {
            return;
        }
        for c in &e.children {
            match c {
                Node::Element(c) => self.element(c),
                // STR_I cannot carry NUL; such text goes out as OPAQUE instead.
                Node::Text(t) if t.as_bytes().contains(&0) => self.opaque(t.as_bytes()),
                Node::Text(t) => {
                    self.out.push(STR_I);
                    self.out.extend_from_slice(t.as_bytes());
                    self.out.push(0);
                }
                Node::Opaque(b) => self.opaque(b),
            }
        }
        self.out.push(END);
    }

    fn opaque(&mut self, b: &[u8]) {
        self.out.push(OPAQUE);
        mb_u_int32(&mut self.out, b.len() as u32);
        self.out.extend_from_slice(b);
    }
}
