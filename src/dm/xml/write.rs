//! Element tree → XML text. Canonical: no prolog, no whitespace, `xmlns` only where the
//! namespace changes (so on the root and on each MetInf child of a `<Meta>`, brief 9.7).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::dm::tree::{Element, Namespace, Node};

/// Compact form, the one sent on the wire (and measured against MaxMsgSize).
pub fn write_tree(root: &Element) -> String {
    let mut out = String::with_capacity(1024);
    write_element(&mut out, root, None, None);
    out
}

/// Indented form for humans (golden files, logs). Decodes to the same tree as the compact form
/// because whitespace between elements is not content.
pub fn write_tree_pretty(root: &Element) -> String {
    let mut out = String::with_capacity(2048);
    write_element(&mut out, root, None, Some(0));
    out.push('\n');
    out
}

fn write_element(
    out: &mut String,
    e: &Element,
    parent_ns: Option<&Namespace>,
    indent: Option<usize>,
) {
    out.push('<');
    out.push_str(&e.name);
    if parent_ns != Some(&e.ns) {
        out.push_str(" xmlns=\"");
        escape_into(out, e.ns.uri());
        out.push('"');
    }
    if e.children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    let has_elements = e.children.iter().any(|n| matches!(n, Node::Element(_)));
    let pretty = indent.filter(|_| has_elements);
    for child in &e.children {
        if let Some(level) = pretty {
            newline(out, level + 1);
        }
        match child {
            Node::Element(c) => write_element(out, c, Some(&e.ns), pretty.map(|l| l + 1)),
            Node::Text(t) => escape_into(out, t),
            Node::Opaque(b) => out.push_str(&STANDARD.encode(b)),
        }
    }
    if let Some(level) = pretty {
        newline(out, level);
    }
    out.push_str("</");
    out.push_str(&e.name);
    out.push('>');
}

fn newline(out: &mut String, level: usize) {
    out.push('\n');
    for _ in 0..level {
        out.push_str("  ");
    }
}

/// Escapes `&`, `<`, `>` and `"`, and writes CR as a character reference so XML end-of-line
/// normalisation cannot turn it into LF on the other side.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}
