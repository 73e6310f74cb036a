//! XML → element tree, with quick-xml's pull reader.
//!
//! Security posture for device input: no DTD processing at all (a DOCTYPE is skipped, as the
//! RTK decoder does; custom entities are therefore unknown and rejected, so entity expansion
//! attacks cannot happen), byte/depth/element limits via [`TreeBuilder`].

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::dm::tree::{Element, Namespace, TreeBuilder};
use crate::dm::{DecodeError, Limits};

/// Parses an XML document into a tree. Elements take the namespace of their `xmlns` attribute,
/// else their parent's; a root without one is taken as SyncML.
pub fn read_tree(body: &[u8], limits: &Limits) -> Result<Element, DecodeError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let text =
        std::str::from_utf8(body).map_err(|e| DecodeError::Xml(format!("not UTF-8: {e}")))?;
    let mut reader = Reader::from_str(text);
    let mut tree = TreeBuilder::new(*limits);
    loop {
        let event = reader
            .read_event()
            .map_err(|e| DecodeError::Xml(e.to_string()))?;
        match event {
            Event::Start(s) => start(&mut tree, &s)?,
            Event::Empty(s) => {
                start(&mut tree, &s)?;
                tree.end()?;
            }
            Event::End(_) => tree.end()?,
            Event::Text(t) => tree.text(&t.xml10_content())?,
            Event::CData(c) => tree.text(&c.xml10_content())?,
            Event::GeneralRef(r) => {
                let c = match r
                    .resolve_char_ref()
                    .map_err(|e| DecodeError::Xml(e.to_string()))?
                {
                    Some(c) => c,
                    None => predefined_entity(&r)
                        .ok_or_else(|| DecodeError::Xml(format!("unknown entity &{};", &*r)))?,
                };
                tree.text(c.encode_utf8(&mut [0; 4]))?;
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    tree.finish()
}

fn predefined_entity(name: &str) -> Option<char> {
    Some(match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => return None,
    })
}

fn start(tree: &mut TreeBuilder, s: &BytesStart<'_>) -> Result<(), DecodeError> {
    let mut ns = None;
    for attr in s.attributes() {
        let attr = attr.map_err(|e| DecodeError::Xml(e.to_string()))?;
        // Only the default namespace declaration matters. Prefixed declarations and other
        // attributes are ignored (the RTK decoder would abort on them; we are lenient).
        if attr.key.as_ref() == "xmlns" {
            let v = attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| DecodeError::Xml(e.to_string()))?;
            ns = Some(Namespace::from_uri(&v));
        }
    }
    let ns = ns
        .or_else(|| tree.current_ns().cloned())
        .unwrap_or(Namespace::SyncML);
    let local = s.local_name();
    tree.start(ns, local.as_ref())
}
