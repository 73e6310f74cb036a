//! `DmTree`: the simulated device's management tree (interior nodes and leaves with format,
//! type and value bytes), with the Get/Replace/Add/Delete/Copy semantics of brief 1.8.

use std::collections::BTreeMap;

use crate::dm::message::{StatusCode, normalize_uri};

/// What a node is. Leaves hold bytes; their `format` says how to show them (`chr`, `int`,
/// `bool`, `bin`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    Interior,
    Leaf { format: String, value: Vec<u8> },
}

/// The operations a node allows (a simplified ACL: brief 5.1 "Access").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub get: bool,
    pub replace: bool,
    pub delete: bool,
    pub exec: bool,
}

impl Access {
    /// Read-only and permanent (DevInfo, DevDetail, FUMO State).
    pub const READ_ONLY: Self = Self {
        get: true,
        replace: false,
        delete: false,
        exec: false,
    };
    /// What nodes added by the server get.
    pub const DYNAMIC: Self = Self {
        get: true,
        replace: true,
        delete: true,
        exec: false,
    };
    /// FUMO Download / Update / DownloadAndUpdate.
    pub const EXEC: Self = Self {
        get: true,
        replace: false,
        delete: false,
        exec: true,
    };
    /// A secret: writable, never readable.
    pub const WRITE_ONLY: Self = Self {
        get: false,
        replace: true,
        delete: false,
        exec: false,
    };
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    /// The node's Type property (MIME type of a leaf, MO identifier of an interior node).
    pub mime_type: Option<String>,
    pub access: Access,
}

/// A value read from the tree for Results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeValue {
    /// `node` for interior nodes.
    pub format: String,
    pub mime_type: Option<String>,
    /// Leaf bytes, or the child names joined by `/` for an interior node.
    pub data: Vec<u8>,
}

/// The tree, keyed by normalised absolute URI (`./DevInfo/DevId`). `.` is the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmTree {
    nodes: BTreeMap<String, Node>,
}

impl Default for DmTree {
    fn default() -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert(
            ".".to_owned(),
            Node {
                kind: NodeKind::Interior,
                mime_type: None,
                access: Access::READ_ONLY,
            },
        );
        Self { nodes }
    }
}

fn parent_of(uri: &str) -> Option<&str> {
    uri.rfind('/').map(|i| &uri[..i])
}

impl DmTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates (or overwrites) an interior node and its missing parents; for building the
    /// initial tree.
    pub fn set_interior(&mut self, uri: &str, mime_type: Option<&str>, access: Access) {
        let uri = normalize_uri(uri);
        self.ensure_parents(&uri);
        self.nodes.insert(
            uri,
            Node {
                kind: NodeKind::Interior,
                mime_type: mime_type.map(str::to_owned),
                access,
            },
        );
    }

    /// Creates (or overwrites) a leaf and its missing parents; for building the initial tree.
    pub fn set_leaf(&mut self, uri: &str, format: &str, value: impl Into<Vec<u8>>, access: Access) {
        let uri = normalize_uri(uri);
        self.ensure_parents(&uri);
        self.nodes.insert(
            uri,
            Node {
                kind: NodeKind::Leaf {
                    format: format.to_owned(),
                    value: value.into(),
                },
                mime_type: Some("text/plain".into()),
                access,
            },
        );
    }

    fn ensure_parents(&mut self, uri: &str) {
        let mut p = parent_of(uri);
        while let Some(parent) = p {
            self.nodes.entry(parent.to_owned()).or_insert(Node {
                kind: NodeKind::Interior,
                mime_type: None,
                access: Access::DYNAMIC,
            });
            p = parent_of(parent);
        }
    }

    pub fn node(&self, uri: &str) -> Option<&Node> {
        self.nodes.get(&normalize_uri(uri))
    }

    /// The bytes of a leaf (empty for interior or absent nodes).
    pub fn value(&self, uri: &str) -> Option<&[u8]> {
        match &self.node(uri)?.kind {
            NodeKind::Leaf { value, .. } => Some(value),
            NodeKind::Interior => None,
        }
    }

    /// A leaf value as text (lossy), for the device's own bookkeeping.
    pub fn text(&self, uri: &str) -> Option<String> {
        self.value(uri)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// Direct children names, in order.
    pub fn children(&self, uri: &str) -> Vec<String> {
        let prefix = format!("{}/", normalize_uri(uri));
        self.nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, _)| {
                let rest = &k[prefix.len()..];
                (!rest.contains('/')).then(|| rest.to_owned())
            })
            .collect()
    }

    /// `Get <uri>?list=Struct`: the node and every node below it, in tree order, with their
    /// Format (what a Results item per node shows; no values). Other `?list=` forms are 406.
    pub fn list_struct(&self, uri: &str) -> Result<Vec<(String, NodeValue)>, StatusCode> {
        let (path, query) = uri
            .split_once('?')
            .ok_or(StatusCode::OPTIONAL_FEATURE_NOT_SUPPORTED)?;
        if query != "list=Struct" {
            return Err(StatusCode::OPTIONAL_FEATURE_NOT_SUPPORTED);
        }
        let path = normalize_uri(path);
        let node = self.nodes.get(&path).ok_or(StatusCode::NOT_FOUND)?;
        if !node.access.get {
            return Err(StatusCode::PERMISSION_DENIED);
        }
        let prefix = format!("{path}/");
        let below = self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix));
        Ok(std::iter::once((&path, node))
            .chain(below)
            .map(|(k, n)| {
                let format = match &n.kind {
                    NodeKind::Leaf { format, .. } => format.clone(),
                    NodeKind::Interior => "node".into(),
                };
                let value = NodeValue {
                    format,
                    mime_type: n.mime_type.clone(),
                    data: Vec::new(),
                };
                (k.clone(), value)
            })
            .collect())
    }

    /// `Get`: a leaf's value, or an interior node's child list (Format `node`). Supports
    /// `?prop=Format|Type|Name|Size`; `?list=Struct` is [`list_struct`](Self::list_struct),
    /// other `?list=` forms are answered 406 (brief 8: unsupported ⇒ 406).
    pub fn get(&self, uri: &str) -> Result<NodeValue, StatusCode> {
        let (path, query) = match uri.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (uri, None),
        };
        let path = normalize_uri(path);
        let node = self.nodes.get(&path).ok_or(StatusCode::NOT_FOUND)?;
        if let Some(q) = query {
            return self.property(&path, node, q);
        }
        if !node.access.get {
            return Err(StatusCode::PERMISSION_DENIED);
        }
        Ok(match &node.kind {
            NodeKind::Leaf { format, value } => NodeValue {
                format: format.clone(),
                mime_type: node.mime_type.clone(),
                data: value.clone(),
            },
            NodeKind::Interior => NodeValue {
                format: "node".into(),
                mime_type: node.mime_type.clone(),
                data: self.children(&path).join("/").into_bytes(),
            },
        })
    }

    fn property(&self, path: &str, node: &Node, query: &str) -> Result<NodeValue, StatusCode> {
        let Some(prop) = query.strip_prefix("prop=") else {
            return Err(StatusCode::OPTIONAL_FEATURE_NOT_SUPPORTED);
        };
        let text = match prop {
            "Format" => match &node.kind {
                NodeKind::Leaf { format, .. } => format.clone(),
                NodeKind::Interior => "node".into(),
            },
            "Type" => node.mime_type.clone().unwrap_or_default(),
            "Name" => path.rsplit('/').next().unwrap_or_default().to_owned(),
            "Size" => match &node.kind {
                NodeKind::Leaf { value, .. } => value.len().to_string(),
                NodeKind::Interior => return Err(StatusCode::COMMAND_NOT_ALLOWED),
            },
            _ => return Err(StatusCode::OPTIONAL_FEATURE_NOT_SUPPORTED),
        };
        Ok(NodeValue {
            format: "chr".into(),
            mime_type: Some("text/plain".into()),
            data: text.into_bytes(),
        })
    }

    /// `Replace` of a leaf value: 404 if absent (Replace never creates), 405 on interior or
    /// read-only nodes.
    pub fn replace(
        &mut self,
        uri: &str,
        format: &str,
        mime_type: Option<&str>,
        value: Vec<u8>,
    ) -> Result<(), StatusCode> {
        self.check_replace(uri)?;
        let node = self
            .nodes
            .get_mut(&normalize_uri(uri))
            .ok_or(StatusCode::NOT_FOUND)?;
        node.kind = NodeKind::Leaf {
            format: format.to_owned(),
            value,
        };
        if let Some(t) = mime_type {
            node.mime_type = Some(t.to_owned());
        }
        Ok(())
    }

    /// The checks of [`replace`](Self::replace) without the write (used before receiving a
    /// Large Object, so a 404 does not cost the whole transfer).
    pub fn check_replace(&self, uri: &str) -> Result<(), StatusCode> {
        let node = self.node(uri).ok_or(StatusCode::NOT_FOUND)?;
        if node.kind == NodeKind::Interior || !node.access.replace {
            return Err(StatusCode::COMMAND_NOT_ALLOWED);
        }
        Ok(())
    }

    /// `Add`: 418 if the node exists; missing parents are created; 405 under a leaf.
    pub fn add(
        &mut self,
        uri: &str,
        leaf: Option<(&str, Vec<u8>)>,
        mime_type: Option<&str>,
    ) -> Result<(), StatusCode> {
        self.check_add(uri)?;
        let uri = normalize_uri(uri);
        self.ensure_parents(&uri);
        let kind = match leaf {
            Some((format, value)) => NodeKind::Leaf {
                format: format.to_owned(),
                value,
            },
            None => NodeKind::Interior,
        };
        self.nodes.insert(
            uri,
            Node {
                kind,
                mime_type: mime_type.map(str::to_owned),
                access: Access::DYNAMIC,
            },
        );
        Ok(())
    }

    /// The checks of [`add`](Self::add) without the write.
    pub fn check_add(&self, uri: &str) -> Result<(), StatusCode> {
        let uri = normalize_uri(uri);
        if uri == "." || self.nodes.contains_key(&uri) {
            return Err(StatusCode::ALREADY_EXISTS);
        }
        let mut p = parent_of(&uri);
        while let Some(parent) = p {
            if let Some(n) = self.nodes.get(parent) {
                if n.kind != NodeKind::Interior {
                    return Err(StatusCode::COMMAND_NOT_ALLOWED);
                }
                break;
            }
            p = parent_of(parent);
        }
        Ok(())
    }

    /// Removes a node and its subtree whatever their ACL; for building the initial tree.
    pub fn remove(&mut self, uri: &str) {
        let uri = normalize_uri(uri);
        let prefix = format!("{uri}/");
        self.nodes
            .retain(|k, _| *k != uri && !k.starts_with(&prefix));
    }

    /// `Delete`: the node and its subtree; 405 for `.` and permanent nodes (or a subtree
    /// holding one), 404 if absent.
    pub fn delete(&mut self, uri: &str) -> Result<(), StatusCode> {
        let uri = normalize_uri(uri);
        let node = self.nodes.get(&uri).ok_or(StatusCode::NOT_FOUND)?;
        if uri == "." || !node.access.delete {
            return Err(StatusCode::COMMAND_NOT_ALLOWED);
        }
        let prefix = format!("{uri}/");
        let subtree: Vec<String> = self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        if subtree.iter().any(|k| !self.nodes[k].access.delete) {
            return Err(StatusCode::COMMAND_NOT_ALLOWED);
        }
        for k in subtree {
            self.nodes.remove(&k);
        }
        self.nodes.remove(&uri);
        Ok(())
    }

    /// `Copy` leaf → leaf: the target is replaced, or added when absent; 403 when either end
    /// is not a leaf (brief 1.8).
    pub fn copy(&mut self, source: &str, target: &str) -> Result<(), StatusCode> {
        let src = self.node(source).ok_or(StatusCode::NOT_FOUND)?.clone();
        let NodeKind::Leaf { format, value } = src.kind else {
            return Err(StatusCode::FORBIDDEN);
        };
        if !src.access.get {
            return Err(StatusCode::PERMISSION_DENIED);
        }
        match self.node(target) {
            Some(_) => self.replace(target, &format, src.mime_type.as_deref(), value),
            None => self.add(target, Some((&format, value)), src.mime_type.as_deref()),
        }
    }

    /// Whether Exec is allowed on the node: 404 absent, 405 not executable.
    pub fn check_exec(&self, uri: &str) -> Result<(), StatusCode> {
        let node = self.node(uri).ok_or(StatusCode::NOT_FOUND)?;
        if node.access.exec {
            Ok(())
        } else {
            Err(StatusCode::COMMAND_NOT_ALLOWED)
        }
    }

    /// Overwrites a leaf value regardless of access (the device's own updates, e.g. State).
    pub fn force_value(&mut self, uri: &str, value: impl Into<Vec<u8>>) {
        if let Some(Node {
            kind: NodeKind::Leaf { value: v, .. },
            ..
        }) = self.nodes.get_mut(&normalize_uri(uri))
        {
            *v = value.into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> DmTree {
        let mut t = DmTree::new();
        t.set_leaf("./DevInfo/DevId", "chr", "IMEI:1", Access::READ_ONLY);
        t.set_leaf("./DevInfo/Man", "chr", "Acme", Access::READ_ONLY);
        t.set_interior(
            "./FUMO/fw1",
            Some("urn:oma:mo:oma-fumo:1.0"),
            Access::DYNAMIC,
        );
        t.set_leaf("./FUMO/fw1/PkgName", "chr", "", Access::DYNAMIC);
        t
    }

    #[test]
    fn get_leaf_interior_and_properties() {
        let t = tree();
        assert_eq!(t.get("DevInfo/DevId").unwrap().data, b"IMEI:1");
        let v = t.get("./DevInfo").unwrap();
        assert_eq!(
            (v.format.as_str(), v.data.as_slice()),
            ("node", &b"DevId/Man"[..])
        );
        assert_eq!(
            t.get("./FUMO/fw1?prop=Type").unwrap().data,
            b"urn:oma:mo:oma-fumo:1.0"
        );
        assert_eq!(t.get("./Nope"), Err(StatusCode::NOT_FOUND));
        assert_eq!(
            t.get("./FUMO?list=Struct"),
            Err(StatusCode::OPTIONAL_FEATURE_NOT_SUPPORTED)
        );
    }

    #[test]
    fn replace_add_delete_codes() {
        let mut t = tree();
        assert_eq!(
            t.replace("./DevInfo/Man", "chr", None, b"x".to_vec()),
            Err(StatusCode::COMMAND_NOT_ALLOWED)
        );
        assert_eq!(
            t.replace("./FUMO/fw1/Missing", "chr", None, b"x".to_vec()),
            Err(StatusCode::NOT_FOUND)
        );
        t.replace("./FUMO/fw1/PkgName", "chr", None, b"fw".to_vec())
            .unwrap();
        assert_eq!(t.value("./FUMO/fw1/PkgName"), Some(&b"fw"[..]));
        assert_eq!(
            t.add("./FUMO/fw1/PkgName", Some(("chr", vec![])), None),
            Err(StatusCode::ALREADY_EXISTS)
        );
        t.add("./Vendor/A/B", Some(("int", b"7".to_vec())), None)
            .unwrap();
        assert_eq!(t.children("./Vendor/A"), vec!["B".to_owned()]);
        assert_eq!(
            t.add("./Vendor/A/B/C", None, None),
            Err(StatusCode::COMMAND_NOT_ALLOWED)
        );
        assert_eq!(t.delete("."), Err(StatusCode::COMMAND_NOT_ALLOWED));
        assert_eq!(t.delete("./DevInfo"), Err(StatusCode::COMMAND_NOT_ALLOWED));
        t.delete("./Vendor").unwrap();
        assert!(t.node("./Vendor/A/B").is_none());
        assert_eq!(t.delete("./Vendor"), Err(StatusCode::NOT_FOUND));
        t.copy("./DevInfo/Man", "./FUMO/fw1/PkgName").unwrap();
        assert_eq!(t.text("./FUMO/fw1/PkgName").as_deref(), Some("Acme"));
        assert_eq!(
            t.copy("./DevInfo", "./X"),
            Err(StatusCode::FORBIDDEN),
            "interior source"
        );
    }
}
