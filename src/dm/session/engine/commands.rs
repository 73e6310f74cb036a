//! The commands the engine builds: Alerts, owed Statuses, queued operations as SyncML, and
//! Generic Alert records.

use super::*;

/// What must follow the owed statuses in the message being filled.
#[derive(Debug, Clone, Copy)]
pub(super) enum Tail {
    None,
    NextMessage,
    Abort,
}

/// How filling from the queue ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fill {
    Done,
    /// A command was held back for the next message of this package.
    Deferred,
}

pub(super) fn simple_alert(cmd_id: u32, data: AlertCode) -> Command {
    Command::Alert(Alert {
        cmd_id: Id::from(cmd_id),
        no_resp: false,
        cred: None,
        data,
        correlator: None,
        items: Vec::new(),
    })
}

pub(super) fn next_message_alert(cmd_id: u32) -> Command {
    simple_alert(cmd_id, AlertCode::NEXT_MESSAGE)
}

pub(super) fn abort_alert(cmd_id: u32) -> Command {
    simple_alert(cmd_id, AlertCode::SESSION_ABORT)
}

pub(super) fn owed_status(o: &OwedStatus, cmd_id: u32) -> Command {
    Command::Status(Status {
        cmd_id: Id::from(cmd_id),
        msg_ref: Some(Id(o.msg_ref.clone())),
        cmd_ref: Some(Id(o.cmd_ref.clone())),
        cmd: o.cmd.clone(),
        target_ref: Vec::new(),
        source_ref: Vec::new(),
        cred: None,
        chal: None,
        data: o.code,
        items: Vec::new(),
    })
}

pub(super) fn no_resp(c: &Command) -> bool {
    match c {
        Command::Add(x)
        | Command::Copy(x)
        | Command::Delete(x)
        | Command::Get(x)
        | Command::Replace(x) => x.no_resp,
        Command::Alert(a) => a.no_resp,
        Command::Exec(e) => e.no_resp,
        Command::Atomic(c) | Command::Sequence(c) => c.no_resp,
        _ => false,
    }
}

/// A Generic Alert / Client Event item as a record, with the leniency of brief 9.10-9.12.
pub(super) fn alert_record(a: &Alert, item: &Item) -> AlertRecord {
    let meta = item.meta.as_ref();
    let alert_type = meta.and_then(|m| m.type_.as_deref()).map(|t| {
        let t = t.trim();
        let lower = t.to_ascii_lowercase();
        match lower.strip_prefix("reversed-domain-name:") {
            Some(_) => t["reversed-domain-name:".len()..].trim().to_owned(),
            None => t.to_owned(),
        }
    });
    let data = item
        .data
        .as_ref()
        .and_then(Data::as_text)
        .map(str::to_owned);
    let result_code = data.as_deref().and_then(|d| {
        let digits: String = d
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    });
    AlertRecord {
        code: a.data.0,
        alert_type,
        source: item.source.as_ref().map(|s| normalize_uri(&s.loc_uri)),
        correlator: a.correlator.clone(),
        format: meta
            .and_then(|m| m.format.as_ref())
            .map(|f| f.as_str().to_owned()),
        mark: meta.and_then(|m| m.mark.clone()),
        data,
        result_code,
    }
}

/// The command for a queued operation, value inline (Item-level Meta, brief 9.6).
pub(super) fn op_command(op: &Operation, cmd_id: u32, enc: Encoding) -> Command {
    let target = |uri: &str| Some(Target::uri(uri));
    let value_item = |uri: &str, v: &crate::dm::session::ops::Value| {
        let (format, data) = match (&v.data, enc) {
            (ValueData::Text(t), _) => (v.format.clone(), Data::Text(t.clone())),
            (ValueData::Bytes(b), Encoding::Xml) => (Format::B64, Data::Text(STANDARD.encode(b))),
            (ValueData::Bytes(b), Encoding::Wbxml) => (Format::Bin, Data::Opaque(b.clone())),
            // Never inlined: `try_push` and `fits_after_header` send blob values as objects.
            (ValueData::Blob(_), _) => (wire_format(enc), Data::Opaque(Vec::new())),
        };
        Item {
            target: target(uri),
            meta: Some(Meta {
                format: Some(format),
                type_: v.mime_type.clone(),
                ..Meta::default()
            }),
            data: Some(data),
            ..Item::default()
        }
    };
    let ic = |items: Vec<Item>| ItemCommand {
        cmd_id: Id::from(cmd_id),
        items,
        ..ItemCommand::default()
    };
    match op {
        Operation::Get { uri } => Command::Get(ic(vec![Item {
            target: target(uri),
            ..Item::default()
        }])),
        Operation::Delete { uri } => Command::Delete(ic(vec![Item {
            target: target(uri),
            ..Item::default()
        }])),
        Operation::Replace { uri, value } => Command::Replace(ic(vec![value_item(uri, value)])),
        Operation::Add {
            uri,
            value: Some(v),
        } => Command::Add(ic(vec![value_item(uri, v)])),
        Operation::Add { uri, value: None } => Command::Add(ic(vec![Item {
            target: target(uri),
            meta: Some(Meta {
                format: Some(Format::Node),
                ..Meta::default()
            }),
            ..Item::default()
        }])),
        Operation::Exec {
            uri,
            data,
            correlator,
        } => Command::Exec(Exec {
            cmd_id: Id::from(cmd_id),
            correlator: correlator.clone(),
            item: Item {
                target: target(uri),
                data: data.clone().map(Data::Text),
                ..Item::default()
            },
            ..Exec::default()
        }),
    }
}
