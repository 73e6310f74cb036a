//! The server's package split over several messages (brief 1.6): whatever the device sends,
//! every reply fits the device's MaxMsgSize measured on the encoded bytes, and every device
//! command that needs a Status gets exactly one, across the messages.

use std::collections::HashMap;

use proptest::prelude::*;

use super::golden::{Counter, op, server};
use crate::dm::message::*;
use crate::dm::session::*;
use crate::dm::{Encoding, encode};

/// What the device sends: a Replace of one DevInfo leaf (Status owed), a Results for nothing
/// we asked (200: no Status), or a Generic Alert (Status owed).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Replace,
    Results,
    Alert,
}

/// Statuses per device command (MsgID, CmdID), the commands owed one, the server's replies.
type Conversation = (
    HashMap<(String, String), u32>,
    Vec<(String, String)>,
    Vec<SyncML>,
);

fn device_command(kind: Kind, cmd_id: u32) -> Command {
    let item = |uri: String, data: String| Item {
        source: Some(Source::uri(uri)),
        data: Some(Data::Text(data)),
        ..Item::default()
    };
    match kind {
        Kind::Replace => Command::Replace(ItemCommand {
            cmd_id: Id::from(cmd_id),
            items: vec![item(
                format!("./DevInfo/Ext/Leaf{cmd_id}"),
                format!("value-{cmd_id}"),
            )],
            ..ItemCommand::default()
        }),
        Kind::Results => Command::Results(Results {
            cmd_id: Id::from(cmd_id),
            msg_ref: Some(Id::from(1)),
            cmd_ref: Id::from(999),
            meta: None,
            target_ref: None,
            source_ref: None,
            items: vec![item(format!("./Vendor/R{cmd_id}"), "r".into())],
        }),
        Kind::Alert => Command::Alert(Alert {
            cmd_id: Id::from(cmd_id),
            no_resp: false,
            cred: None,
            data: AlertCode::GENERIC_ALERT,
            correlator: Some(format!("job-{cmd_id}")),
            items: vec![Item {
                source: Some(Source::uri("./FUMO/1/Update")),
                meta: Some(Meta {
                    format: Some(Format::Int),
                    type_: Some("org.openmobilealliance.dm.firmwareupdate.update".into()),
                    ..Meta::default()
                }),
                data: Some(Data::Text("200".into())),
                ..Item::default()
            }],
        }),
    }
}

fn alert(cmd_id: u32, code: AlertCode) -> Command {
    Command::Alert(Alert {
        cmd_id: Id::from(cmd_id),
        no_resp: false,
        cred: None,
        data: code,
        correlator: None,
        items: Vec::new(),
    })
}

fn header_status(reply: &SyncML) -> Command {
    Command::Status(Status {
        cmd_id: Id::from(1),
        msg_ref: Some(reply.hdr.msg_id.clone()),
        cmd_ref: Some(Id::from(0)),
        cmd: "SyncHdr".into(),
        target_ref: vec![reply.hdr.target.loc_uri.clone()],
        source_ref: vec![reply.hdr.source.loc_uri.clone()],
        cred: None,
        chal: None,
        data: StatusCode::OK,
        items: Vec::new(),
    })
}

/// The device's answers to one server message: 200 for every command in it.
fn answers(reply: &SyncML, next_id: &mut u32) -> Vec<Command> {
    let mut out = vec![header_status(reply)];
    for c in &reply.body.commands {
        if !matches!(c, Command::Status(_)) {
            *next_id += 1;
            out.push(Command::Status(Status {
                cmd_id: Id::from(*next_id),
                msg_ref: Some(reply.hdr.msg_id.clone()),
                cmd_ref: Some(c.cmd_id().clone()),
                cmd: c.name().into(),
                target_ref: vec![],
                source_ref: vec![],
                cred: None,
                chal: None,
                data: StatusCode::OK,
                items: vec![],
            }));
        }
    }
    out
}

/// Runs a session in which the device sends `kinds` (after Alert 1201) spread over `parts`
/// messages, then answers whatever the server sends. Checks every reply's size, returns the
/// count of Statuses per device command (MsgID, CmdID) and the device commands owed one.
pub(crate) fn converse(
    kinds: &[Kind],
    parts: usize,
    max_msg: u64,
    enc: Encoding,
    queue: &[QueuedOperation],
) -> Conversation {
    let cfg = server();
    let device = DeviceRecord {
        dev_id: "IMEI:1".into(),
        ..DeviceRecord::default()
    };
    let mut state = SessionState::default();
    let mut rng = Counter(0);
    let mut counts: HashMap<(String, String), u32> = HashMap::new();
    let mut owed = Vec::new();
    let per = kinds.len().div_ceil(parts.max(1)).max(1);
    let mut chunks: Vec<&[Kind]> = kinds.chunks(per).collect();
    chunks.reverse();
    let mut msg_id = 0u32;
    let mut last_reply: Option<SyncML> = None;
    let mut server_messages = 0;
    let mut replies = Vec::new();
    loop {
        msg_id += 1;
        let mut cmds = Vec::new();
        let mut cmd_id = 0u32;
        if let Some(r) = &last_reply {
            cmds = answers(r, &mut cmd_id);
        }
        let mut owe = |c: &Command, msg_id: u32| {
            if !matches!(c, Command::Status(_) | Command::Results(_)) {
                owed.push((msg_id.to_string(), c.cmd_id().as_str().to_owned()));
            }
        };
        if msg_id == 1 {
            cmd_id += 1;
            cmds.push(alert(cmd_id, AlertCode::CLIENT_INITIATED_MGMT));
        }
        let server_open = last_reply.as_ref().is_some_and(|r| !r.body.final_);
        let mut final_ = true;
        if let Some(part) = chunks.pop() {
            for k in part {
                cmd_id += 1;
                cmds.push(device_command(*k, cmd_id));
            }
            final_ = chunks.is_empty();
        } else if server_open {
            // The server's package is not complete: ask for the rest, without Final.
            cmd_id += 1;
            cmds.push(alert(cmd_id, AlertCode::NEXT_MESSAGE));
            final_ = false;
        }
        for c in &cmds {
            owe(c, msg_id);
        }
        let m = SyncML {
            hdr: SyncHdr {
                ver_dtd: "1.2".into(),
                ver_proto: "DM/1.2".into(),
                session_id: "1".into(),
                msg_id: Id::from(msg_id),
                target: Target::uri("https://dm.example.net/dm"),
                source: Source::uri("IMEI:1"),
                meta: Some(Meta {
                    max_msg_size: Some(max_msg),
                    ..Meta::default()
                }),
                ..SyncHdr::default()
            },
            body: SyncBody {
                commands: cmds,
                final_,
            },
        };
        let body = encode(&m, enc);
        let (out, _fx) = handle(
            state,
            Inbound {
                message: &m,
                encoding: enc,
                body: &body,
                hmac_header: None,
                device: &device,
                queue,
                window: None,
                server: &cfg,
            },
            0,
            &mut rng,
        );
        server_messages += 1;
        assert!(
            out.body.len() as u64 <= max_msg,
            "server message {server_messages}: {} bytes over MaxMsgSize {max_msg}",
            out.body.len()
        );
        assert_eq!(out.body, encode(&out.message, enc));
        for c in &out.message.body.commands {
            if let Command::Status(s) = c
                && s.cmd_ref.as_ref().is_some_and(|r| r.as_str() != "0")
            {
                let key = (
                    s.msg_ref.as_ref().map(|r| r.0.clone()).unwrap_or_default(),
                    s.cmd_ref.as_ref().map(|r| r.0.clone()).unwrap_or_default(),
                );
                *counts.entry(key).or_default() += 1;
            }
        }
        state = out.state;
        replies.push(out.message.clone());
        if out.session_over {
            return (counts, owed, replies);
        }
        assert!(server_messages < 2000, "no end in sight");
        last_reply = Some(out.message);
    }
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => Just(Kind::Replace),
        1 => Just(Kind::Results),
        2 => Just(Kind::Alert),
    ]
}

fn check_exactly_once(counts: &HashMap<(String, String), u32>, owed: &[(String, String)]) {
    for k in owed {
        assert_eq!(
            counts.get(k).copied(),
            Some(1),
            "Statuses for device command {k:?}"
        );
    }
    assert_eq!(
        counts.len(),
        owed.len(),
        "Statuses for commands the device never sent"
    );
}

#[test]
fn statuses_that_do_not_fit_follow_in_the_next_messages() {
    let kinds = vec![Kind::Replace; 300];
    let (counts, owed, replies) = converse(&kinds, 1, 2000, Encoding::Xml, &[]);
    check_exactly_once(&counts, &owed);
    assert!(replies.len() > 3, "{}", replies.len());
    // Every part but the last goes without Final and without commands of ours.
    for r in &replies[..replies.len() - 1] {
        assert!(!r.body.final_);
        assert!(
            r.body
                .commands
                .iter()
                .all(|c| matches!(c, Command::Status(_)))
        );
    }
}

#[test]
fn new_commands_only_after_the_last_owed_status() {
    let queue = [op(
        "get",
        Operation::Get {
            uri: "./DevDetail/SwV".into(),
        },
        None,
    )];
    let kinds = vec![Kind::Alert; 120];
    let (counts, owed, replies) = converse(&kinds, 2, 1500, Encoding::Wbxml, &queue);
    check_exactly_once(&counts, &owed);
    // Server message j answers device message j. The Get goes in the message that carries
    // the last Status owed for the device's package: none for an earlier device message
    // follows it.
    let j = replies
        .iter()
        .position(|r| r.body.commands.iter().any(|c| matches!(c, Command::Get(_))))
        .expect("the Get is sent")
        + 1;
    assert!(j > 2, "the statuses needed several messages");
    for r in &replies[j..] {
        for c in &r.body.commands {
            if let Command::Status(s) = c {
                let m = s.msg_ref.as_ref().and_then(Id::number).unwrap();
                assert!(m > j as u32, "Status for device message {m} after our Get");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn replies_never_exceed_max_msg_size_and_each_command_gets_one_status(
        kinds in proptest::collection::vec(kind(), 1..400),
        max_msg in 1100u64..8000,
        parts in 1usize..4,
        wbxml in any::<bool>(),
    ) {
        let enc = if wbxml { Encoding::Wbxml } else { Encoding::Xml };
        let (counts, owed, _) = converse(&kinds, parts, max_msg, enc, &[]);
        check_exactly_once(&counts, &owed);
    }
}
