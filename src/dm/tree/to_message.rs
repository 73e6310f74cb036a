//! Element tree → typed message. Order-free and lenient where real clients differ (brief 9):
//! children are looked up by name, missing optional parts default, MetInf children are found
//! whatever namespace they carry, numbers tolerate surrounding whitespace. Only what the server
//! cannot answer without (SessionID, MsgID, the header's Target and Source) is required.

use super::{Element, Node};
use crate::dm::DecodeError;
use crate::dm::message::{
    Alert, AlertCode, Anchor, Chal, Command, Container, Cred, Data, Exec, Format, Id, Item,
    ItemCommand, Mem, Meta, Results, Source, Status, StatusCode, SyncBody, SyncHdr, SyncML, Target,
    UnknownCommand,
};

/// Maps a decoded `<SyncML>` element to the typed message.
pub fn tree_to_message(root: &Element) -> Result<SyncML, DecodeError> {
    if root.name != "SyncML" {
        return Err(DecodeError::NotSyncMl(format!(
            "root element is <{}>",
            root.name
        )));
    }
    let h = root
        .child("SyncHdr")
        .ok_or(DecodeError::MissingElement("SyncHdr"))?;
    let hdr = SyncHdr {
        ver_dtd: trimmed(h, "VerDTD").unwrap_or_default(),
        ver_proto: trimmed(h, "VerProto").unwrap_or_default(),
        // Not trimmed: the SessionID is echoed byte for byte (brief 9.1).
        session_id: h
            .child_text("SessionID")
            .ok_or(DecodeError::MissingElement("SessionID"))?,
        msg_id: Id(trimmed(h, "MsgID").ok_or(DecodeError::MissingElement("MsgID"))?),
        target: h
            .child("Target")
            .map(target)
            .ok_or(DecodeError::MissingElement("SyncHdr/Target"))?,
        source: h
            .child("Source")
            .map(source)
            .ok_or(DecodeError::MissingElement("SyncHdr/Source"))?,
        resp_uri: trimmed(h, "RespURI"),
        no_resp: h.child("NoResp").is_some(),
        cred: h.child("Cred").map(cred),
        meta: h.child("Meta").map(meta),
    };
    let mut body = SyncBody::default();
    if let Some(b) = root.child("SyncBody") {
        for e in b.elements() {
            if e.name == "Final" {
                body.final_ = true;
            } else {
                body.commands.push(command(e));
            }
        }
    }
    Ok(SyncML { hdr, body })
}

fn trimmed(e: &Element, name: &str) -> Option<String> {
    e.child_text(name).map(|t| t.trim().to_owned())
}

fn id(e: &Element, name: &str) -> Id {
    Id(trimmed(e, name).unwrap_or_default())
}

fn number(e: &Element, name: &str) -> Option<u64> {
    trimmed(e, name).and_then(|t| t.parse().ok())
}

fn target(e: &Element) -> Target {
    Target {
        loc_uri: trimmed(e, "LocURI").unwrap_or_default(),
        loc_name: trimmed(e, "LocName"),
    }
}

fn source(e: &Element) -> Source {
    Source {
        loc_uri: trimmed(e, "LocURI").unwrap_or_default(),
        loc_name: trimmed(e, "LocName"),
    }
}

fn cred(e: &Element) -> Cred {
    Cred {
        meta: e.child("Meta").map(meta),
        data: trimmed(e, "Data").unwrap_or_default(),
    }
}

fn meta(e: &Element) -> Meta {
    Meta {
        field_level: e.child("FieldLevel").is_some(),
        format: trimmed(e, "Format").map(|f| Format::parse(&f)),
        type_: trimmed(e, "Type"),
        mark: trimmed(e, "Mark"),
        size: number(e, "Size"),
        anchor: e.child("Anchor").map(|a| Anchor {
            last: trimmed(a, "Last"),
            next: trimmed(a, "Next").unwrap_or_default(),
        }),
        version: trimmed(e, "Version"),
        next_nonce: trimmed(e, "NextNonce"),
        max_msg_size: number(e, "MaxMsgSize"),
        max_obj_size: number(e, "MaxObjSize"),
        emi: e
            .children_named("EMI")
            .map(|x| x.text().trim().to_owned())
            .collect(),
        mem: e.child("Mem").map(|m| Mem {
            shared_mem: m.child("SharedMem").is_some(),
            free_mem: number(m, "FreeMem"),
            free_id: number(m, "FreeID"),
        }),
    }
}

fn command(e: &Element) -> Command {
    match e.name.as_str() {
        "Add" => Command::Add(item_command(e)),
        "Copy" => Command::Copy(item_command(e)),
        "Delete" => Command::Delete(item_command(e)),
        "Get" => Command::Get(item_command(e)),
        "Replace" => Command::Replace(item_command(e)),
        "Alert" => Command::Alert(Alert {
            cmd_id: id(e, "CmdID"),
            no_resp: e.child("NoResp").is_some(),
            cred: e.child("Cred").map(cred),
            // A missing or non-numeric code becomes 0, which no alert uses; the engine answers
            // it with 412 (incomplete command) instead of rejecting the whole message.
            data: trimmed(e, "Data")
                .and_then(|d| AlertCode::parse(&d))
                .unwrap_or(AlertCode(0)),
            correlator: trimmed(e, "Correlator"),
            items: items(e),
        }),
        "Exec" => Command::Exec(Exec {
            cmd_id: id(e, "CmdID"),
            no_resp: e.child("NoResp").is_some(),
            cred: e.child("Cred").map(cred),
            meta: e.child("Meta").map(meta),
            correlator: trimmed(e, "Correlator"),
            item: e.child("Item").map(item).unwrap_or_default(),
        }),
        "Atomic" => Command::Atomic(container(e)),
        "Sequence" => Command::Sequence(container(e)),
        "Status" => Command::Status(Status {
            cmd_id: id(e, "CmdID"),
            msg_ref: trimmed(e, "MsgRef").map(Id),
            cmd_ref: trimmed(e, "CmdRef").map(Id),
            cmd: trimmed(e, "Cmd").unwrap_or_default(),
            target_ref: e
                .children_named("TargetRef")
                .map(|t| t.text().trim().to_owned())
                .collect(),
            source_ref: e
                .children_named("SourceRef")
                .map(|t| t.text().trim().to_owned())
                .collect(),
            cred: e.child("Cred").map(cred),
            chal: e.child("Chal").map(|c| Chal {
                meta: c.child("Meta").map(meta).unwrap_or_default(),
            }),
            data: trimmed(e, "Data")
                .and_then(|d| StatusCode::parse(&d))
                .unwrap_or(StatusCode(0)),
            items: items(e),
        }),
        "Results" => Command::Results(Results {
            cmd_id: id(e, "CmdID"),
            msg_ref: trimmed(e, "MsgRef").map(Id),
            cmd_ref: id(e, "CmdRef"),
            meta: e.child("Meta").map(meta),
            target_ref: trimmed(e, "TargetRef"),
            source_ref: trimmed(e, "SourceRef"),
            items: items(e),
        }),
        other => Command::Unknown(UnknownCommand {
            name: other.to_owned(),
            cmd_id: id(e, "CmdID"),
        }),
    }
}

fn item_command(e: &Element) -> ItemCommand {
    ItemCommand {
        cmd_id: id(e, "CmdID"),
        no_resp: e.child("NoResp").is_some(),
        cred: e.child("Cred").map(cred),
        meta: e.child("Meta").map(meta),
        items: items(e),
    }
}

fn container(e: &Element) -> Container {
    Container {
        cmd_id: id(e, "CmdID"),
        no_resp: e.child("NoResp").is_some(),
        meta: e.child("Meta").map(meta),
        commands: e
            .elements()
            .filter(|c| !matches!(c.name.as_str(), "CmdID" | "NoResp" | "Meta"))
            .map(command)
            .collect(),
    }
}

fn items(e: &Element) -> Vec<Item> {
    e.children_named("Item").map(item).collect()
}

fn item(e: &Element) -> Item {
    Item {
        target: e.child("Target").map(target),
        source: e.child("Source").map(source),
        meta: e.child("Meta").map(meta),
        data: e.child("Data").map(data),
        more_data: e.child("MoreData").is_some(),
    }
}

/// Item data, not trimmed: it can be a Large Object chunk or a value with meaningful spaces.
fn data(e: &Element) -> Data {
    let elements: Vec<Element> = e.elements().cloned().collect();
    if !elements.is_empty() {
        return Data::Elements(elements);
    }
    if e.children.iter().any(|n| matches!(n, Node::Opaque(_))) {
        let mut bytes = Vec::new();
        for n in &e.children {
            match n {
                Node::Opaque(b) => bytes.extend_from_slice(b),
                Node::Text(t) => bytes.extend_from_slice(t.as_bytes()),
                Node::Element(_) => {}
            }
        }
        return Data::Opaque(bytes);
    }
    Data::Text(e.text())
}
