//! `TreeBuilder`: assembles an [`Element`] tree from start/end/text events, enforcing
//! [`Limits`] on depth and element count as it goes.

use super::{Element, Namespace, Node};
use crate::dm::{DecodeError, Limits};

/// Event sink shared by the XML and WBXML readers.
pub struct TreeBuilder {
    limits: Limits,
    stack: Vec<Element>,
    elements: usize,
    root: Option<Element>,
}

impl TreeBuilder {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            stack: Vec::new(),
            elements: 0,
            root: None,
        }
    }

    pub fn depth(&self) -> usize {
        self.stack.len()
    }

    /// Namespace of the innermost open element (XML default-namespace inheritance).
    pub fn current_ns(&self) -> Option<&Namespace> {
        self.stack.last().map(|e| &e.ns)
    }

    pub fn start(&mut self, ns: Namespace, name: &str) -> Result<(), DecodeError> {
        if self.root.is_some() {
            return Err(DecodeError::NotSyncMl(
                "content after the root element".into(),
            ));
        }
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return Err(DecodeError::TooManyElements {
                limit: self.limits.max_elements,
            });
        }
        if self.stack.len() >= self.limits.max_depth {
            return Err(DecodeError::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        self.stack.push(Element::new(ns, name));
        Ok(())
    }

    pub fn end(&mut self) -> Result<(), DecodeError> {
        let mut done = self
            .stack
            .pop()
            .ok_or_else(|| DecodeError::NotSyncMl("end tag without start".into()))?;
        // Whitespace between child elements is layout, not content: drop it so pretty-printed
        // and compact documents decode to the same tree. Leaf whitespace is kept.
        if done.children.iter().any(|n| matches!(n, Node::Element(_))) {
            done.children
                .retain(|n| !matches!(n, Node::Text(t) if t.trim().is_empty()));
        }
        match self.stack.last_mut() {
            Some(parent) => parent.children.push(Node::Element(done)),
            None => self.root = Some(done),
        }
        Ok(())
    }

    pub fn text(&mut self, t: &str) -> Result<(), DecodeError> {
        match self.stack.last_mut() {
            Some(top) => {
                if let Some(Node::Text(prev)) = top.children.last_mut() {
                    prev.push_str(t);
                } else if !t.is_empty() {
                    top.children.push(Node::Text(t.to_owned()));
                }
                Ok(())
            }
            None if t.trim().is_empty() => Ok(()),
            None => Err(DecodeError::NotSyncMl(
                "text outside the root element".into(),
            )),
        }
    }

    pub fn opaque(&mut self, bytes: Vec<u8>) -> Result<(), DecodeError> {
        match self.stack.last_mut() {
            Some(top) => {
                top.children.push(Node::Opaque(bytes));
                Ok(())
            }
            None => Err(DecodeError::NotSyncMl(
                "data outside the root element".into(),
            )),
        }
    }

    pub fn finish(self) -> Result<Element, DecodeError> {
        if !self.stack.is_empty() {
            return Err(DecodeError::NotSyncMl("unterminated element".into()));
        }
        self.root
            .ok_or_else(|| DecodeError::NotSyncMl("empty document".into()))
    }
}
