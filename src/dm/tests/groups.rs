//! Sequence groups around a Large Object: the members before it are delivered and answered
//! before its first chunk, the members after it wait for its last chunk's acknowledgement,
//! and are held back when the object cannot be delivered.

use super::golden::{Counter, op, server};
use crate::dm::message::*;
use crate::dm::session::*;
use crate::dm::{Encoding, encode};

fn device_msg(msg_id: u32, body: Vec<Command>, final_: bool) -> SyncML {
    SyncML {
        hdr: SyncHdr {
            ver_dtd: "1.2".into(),
            ver_proto: "DM/1.2".into(),
            session_id: "7".into(),
            msg_id: Id::from(msg_id),
            target: Target::uri("https://dm.example.net/dm"),
            source: Source::uri("IMEI:7"),
            meta: Some(Meta {
                max_msg_size: Some(3000),
                ..Meta::default()
            }),
            ..SyncHdr::default()
        },
        body: SyncBody {
            commands: body,
            final_,
        },
    }
}

fn status(reply: &SyncML, id: u32, c: &Command, code: StatusCode) -> Command {
    Command::Status(Status {
        cmd_id: Id::from(id),
        msg_ref: Some(reply.hdr.msg_id.clone()),
        cmd_ref: Some(c.cmd_id().clone()),
        cmd: c.name().into(),
        target_ref: vec![],
        source_ref: vec![],
        cred: None,
        chal: None,
        data: code,
        items: vec![],
    })
}

fn target(c: &Command) -> String {
    match c {
        Command::Replace(x) | Command::Add(x) | Command::Get(x) => x.items[0]
            .target
            .as_ref()
            .map(|t| t.loc_uri.clone())
            .unwrap_or_default(),
        Command::Exec(e) => e.item.target.as_ref().unwrap().loc_uri.clone(),
        other => other.name().to_owned(),
    }
}

/// One server command as the device saw it: (server message index, target, more data).
type Seen = (usize, String, bool);

/// Runs a session; the device answers chunks 213 (or `chunk_code` for chunk number
/// `fail_chunk`), Exec 202 and everything else 200.
fn run(
    device: &DeviceRecord,
    queue: &[QueuedOperation],
    fail_chunk: Option<(usize, StatusCode)>,
) -> (Vec<Seen>, Vec<Effect>) {
    let cfg = server();
    let mut state = SessionState::default();
    let mut rng = Counter(0);
    let mut seen = Vec::new();
    let mut effects = Vec::new();
    let mut chunks = 0;
    let mut msg = device_msg(
        1,
        vec![Command::Alert(Alert {
            cmd_id: Id::from(1),
            no_resp: false,
            cred: None,
            data: AlertCode::SERVER_INITIATED_MGMT,
            correlator: None,
            items: vec![],
        })],
        true,
    );
    for n in 1..500usize {
        let body = encode(&msg, Encoding::Xml);
        let (out, fx) = handle(
            state,
            Inbound {
                message: &msg,
                encoding: Encoding::Xml,
                body: &body,
                hmac_header: None,
                device,
                queue,
                window: None,
                server: &cfg,
            },
            0,
            &mut rng,
        );
        effects.extend(fx);
        state = out.state;
        if out.session_over {
            return (seen, effects);
        }
        let reply = out.message;
        let mut answer = vec![Command::Status(Status {
            cmd_id: Id::from(1),
            msg_ref: Some(reply.hdr.msg_id.clone()),
            cmd_ref: Some(Id::from(0)),
            cmd: "SyncHdr".into(),
            target_ref: vec![],
            source_ref: vec![],
            cred: None,
            chal: None,
            data: StatusCode::OK,
            items: vec![],
        })];
        let mut more = false;
        let mut leaves = Vec::new();
        for c in &reply.body.commands {
            match c {
                Command::Status(_) => {}
                Command::Sequence(s) => leaves.extend(s.commands.iter().cloned()),
                c => leaves.push(c.clone()),
            }
        }
        for c in &leaves {
            let chunk_more = matches!(c, Command::Replace(x) if x.items[0].more_data);
            seen.push((n, target(c), chunk_more));
            let mut code = match c {
                Command::Exec(_) => StatusCode::ACCEPTED,
                Command::Get(_) => StatusCode::OK,
                _ if chunk_more => StatusCode::CHUNKED_ITEM_ACCEPTED,
                _ => StatusCode::OK,
            };
            if chunk_more
                || matches!(c, Command::Replace(x) if x.items[0].meta.as_ref().is_some_and(|m| m.format == Some(Format::B64)))
            {
                chunks += 1;
                if let Some((k, bad)) = fail_chunk
                    && k == chunks
                {
                    code = bad;
                }
            }
            more |= code == StatusCode::CHUNKED_ITEM_ACCEPTED;
            let id = answer.len() as u32 + 1;
            answer.push(status(&reply, id, c, code));
        }
        if let Some(Command::Get(g)) = leaves.first() {
            // The LrgObj probe.
            answer.push(Command::Results(Results {
                cmd_id: Id::from(answer.len() as u32 + 1),
                msg_ref: Some(reply.hdr.msg_id.clone()),
                cmd_ref: g.cmd_id.clone(),
                meta: None,
                target_ref: None,
                source_ref: None,
                items: vec![Item {
                    source: Some(Source::uri("./DevDetail/LrgObj")),
                    data: Some(Data::Text("true".into())),
                    ..Item::default()
                }],
            }));
        }
        let asks = more || !reply.body.final_;
        if asks {
            answer.push(Command::Alert(Alert {
                cmd_id: Id::from(answer.len() as u32 + 1),
                no_resp: false,
                cred: None,
                data: AlertCode::NEXT_MESSAGE,
                correlator: None,
                items: vec![],
            }));
        }
        msg = device_msg(n as u32 + 1, answer, !asks);
    }
    panic!("session did not end");
}

fn fumo_group() -> Vec<QueuedOperation> {
    vec![
        op(
            "ver",
            Operation::Replace {
                uri: "./FUMO/x/PkgVersion".into(),
                value: Value::text(Format::Chr, "2.0"),
            },
            Some("fw"),
        ),
        op(
            "data",
            Operation::Replace {
                uri: "./FUMO/x/Update/PkgData".into(),
                value: Value::bytes("application/octet-stream", vec![0x5A; 9000]),
            },
            Some("fw"),
        ),
        op(
            "exec",
            Operation::Exec {
                uri: "./FUMO/x/Update".into(),
                data: None,
                correlator: Some("c1".into()),
            },
            Some("fw"),
        ),
        op(
            "after",
            Operation::Get {
                uri: "./DevDetail/SwV".into(),
            },
            None,
        ),
    ]
}

fn device(lrgobj: Option<bool>) -> DeviceRecord {
    DeviceRecord {
        dev_id: "IMEI:7".into(),
        large_object_support: lrgobj,
        ..DeviceRecord::default()
    }
}

fn msg_of(seen: &[Seen], uri: &str) -> Option<usize> {
    seen.iter().find(|s| s.1 == uri).map(|s| s.0)
}

#[test]
fn members_before_a_large_object_go_first_and_members_after_wait_for_its_last_chunk() {
    for lrgobj in [Some(true), None] {
        let (seen, fx) = run(&device(lrgobj), &fumo_group(), None);
        let chunk_msgs: Vec<usize> = seen
            .iter()
            .filter(|s| s.1 == "./FUMO/x/Update/PkgData")
            .map(|s| s.0)
            .collect();
        assert!(chunk_msgs.len() > 2, "{seen:?}");
        let (first, last) = (chunk_msgs[0], *chunk_msgs.last().unwrap());
        let ver = msg_of(&seen, "./FUMO/x/PkgVersion").unwrap();
        let exec = msg_of(&seen, "./FUMO/x/Update").unwrap();
        assert!(ver < first, "{seen:?}");
        // After the message acknowledging the last chunk, not with or before it.
        assert!(exec > last, "{seen:?}");
        assert!(fx.contains(&Effect::OperationStatus {
            op_id: "exec".into(),
            status: StatusCode::ACCEPTED
        }));
    }
}

fn not_delivered(fx: &[Effect], id: &str) -> Option<(NotDelivered, bool)> {
    fx.iter().find_map(|e| match e {
        Effect::OperationNotDelivered {
            op_id,
            reason,
            retry_later,
        } if op_id == id => Some((reason.clone(), *retry_later)),
        _ => None,
    })
}

#[test]
fn members_after_an_undeliverable_large_object_are_held_back() {
    // No Large Object support: the object is refused for good, and so is the Exec.
    let (seen, fx) = run(&device(Some(false)), &fumo_group(), None);
    assert!(msg_of(&seen, "./FUMO/x/Update").is_none(), "{seen:?}");
    assert_eq!(
        not_delivered(&fx, "exec"),
        Some((
            NotDelivered::GroupInterrupted {
                after: "data".into()
            },
            false
        ))
    );
    // Operations outside the group still go.
    assert!(msg_of(&seen, "./DevDetail/SwV").is_some());

    // Larger than the device's MaxObjSize.
    let dev = DeviceRecord {
        max_obj_size: Some(1000),
        ..device(Some(true))
    };
    let (seen, fx) = run(&dev, &fumo_group(), None);
    assert!(msg_of(&seen, "./FUMO/x/Update").is_none(), "{seen:?}");
    assert!(matches!(not_delivered(&fx, "exec"), Some((_, false))));
}

#[test]
fn members_after_a_large_object_refused_mid_transfer_wait_for_its_retry() {
    let (seen, fx) = run(
        &device(Some(true)),
        &fumo_group(),
        Some((2, StatusCode::SIZE_MISMATCH)),
    );
    assert!(msg_of(&seen, "./FUMO/x/Update").is_none(), "{seen:?}");
    assert!(matches!(
        not_delivered(&fx, "data"),
        Some((NotDelivered::LargeObjectFailed { .. }, true))
    ));
    // The object is retried in a later session; the Exec waits for it.
    assert_eq!(
        not_delivered(&fx, "exec"),
        Some((
            NotDelivered::GroupInterrupted {
                after: "data".into()
            },
            true
        ))
    );
}
