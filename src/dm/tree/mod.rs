//! A codec-neutral element tree: both XML and WBXML decode into it and encode from it, and
//! one mapping turns it into the typed [`SyncML`](crate::dm::message::SyncML) model.
//!
//! Why a tree: element order differs across device stacks (brief 9.17), so the typed mapping
//! looks children up by name instead of streaming; and the two codecs then share one mapping.

mod builder;
mod from_message;
mod to_message;

pub use builder::TreeBuilder;
pub use from_message::message_to_tree;
pub use to_message::tree_to_message;

/// The namespace (XML) or code page (WBXML) an element belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Namespace {
    /// `SYNCML:SYNCML1.2`, WBXML code page 0.
    SyncML,
    /// `syncml:metinf`, code page 1.
    MetInf,
    /// `syncml:dmddf1.2` (TNDS/DDF), code page 2.
    DmDdf,
    /// Anything else (embedded foreign markup); WBXML writes these names as LITERAL tags.
    Other(String),
}

impl Namespace {
    pub const SYNCML_URI: &'static str = "SYNCML:SYNCML1.2";
    pub const METINF_URI: &'static str = "syncml:metinf";
    pub const DMDDF_URI: &'static str = "syncml:dmddf1.2";

    /// Maps an `xmlns` value. The SyncML namespace is matched case-insensitively on its
    /// `SYNCML:SYNCML` prefix, as the RTK decoder does (brief 1.2), so 1.1 documents pass too.
    pub fn from_uri(uri: &str) -> Self {
        let u = uri.trim();
        if u.len() >= 13 && u[..13].eq_ignore_ascii_case("SYNCML:SYNCML") {
            Self::SyncML
        } else if u.eq_ignore_ascii_case(Self::METINF_URI) {
            Self::MetInf
        } else if u.eq_ignore_ascii_case(Self::DMDDF_URI) {
            Self::DmDdf
        } else {
            Self::Other(u.to_owned())
        }
    }

    pub fn uri(&self) -> &str {
        match self {
            Self::SyncML => Self::SYNCML_URI,
            Self::MetInf => Self::METINF_URI,
            Self::DmDdf => Self::DMDDF_URI,
            Self::Other(u) => u,
        }
    }
}

/// One element: namespace, local name, children in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub ns: Namespace,
    pub name: String,
    pub children: Vec<Node>,
}

/// A child of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
    /// WBXML OPAQUE bytes.
    Opaque(Vec<u8>),
}

impl Element {
    pub fn new(ns: Namespace, name: impl Into<String>) -> Self {
        Self {
            ns,
            name: name.into(),
            children: Vec::new(),
        }
    }

    /// Child elements named `name` (any namespace: devices omit or misplace xmlns).
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.name == name)
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// Concatenated character content; OPAQUE bytes count as UTF-8 text (lossy) here because
    /// some encoders put plain strings in OPAQUE.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            match n {
                Node::Text(t) => s.push_str(t),
                Node::Opaque(b) => s.push_str(&String::from_utf8_lossy(b)),
                Node::Element(_) => {}
            }
        }
        s
    }

    /// Text of a child element, if the child exists.
    pub fn child_text(&self, name: &str) -> Option<String> {
        self.child(name).map(Element::text)
    }

    pub fn push_element(&mut self, e: Element) {
        self.children.push(Node::Element(e));
    }

    pub fn push_text(&mut self, t: impl Into<String>) {
        self.children.push(Node::Text(t.into()));
    }
}

/// The tree of a single Item (used to measure chunk sizes in isolation).
pub fn from_item(item: &crate::dm::message::Item) -> Element {
    from_message::item(item)
}
