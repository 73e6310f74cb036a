//! Hand-written server messages for what the engine never does wrong on purpose: oversized
//! objects and messages, broken chunk streams, bad references, Atomic failure, abort, a
//! server without credentials.

use crate::dm::auth::AuthType;
use crate::dm::message::{
    Alert, AlertCode, Command, Container, Data, Format, Id, Item, ItemCommand, Meta, Source,
    Status, StatusCode, SyncBody, SyncHdr, SyncML, Target,
};
use crate::dm::{Encoding, Limits, decode, encode};
use crate::simulator::{
    ClientSession, DeviceProfile, HttpReply, HttpRequest, Initiation, SessionOptions, SimDevice,
    SimError,
};

const DEV: &str = "IMEI:900";

fn device() -> SimDevice {
    let mut p = DeviceProfile::new(DEV, "s");
    p.auth = AuthType::Basic;
    p.max_obj_size = 64;
    SimDevice::new(p)
}

fn status(msg_ref: u32, cmd_ref: u32, cmd: &str, code: u16) -> Command {
    Command::Status(Status {
        cmd_id: Id::from(1),
        msg_ref: Some(Id::from(msg_ref)),
        cmd_ref: Some(Id::from(cmd_ref)),
        cmd: cmd.into(),
        target_ref: vec![],
        source_ref: vec![],
        cred: None,
        chal: None,
        data: StatusCode(code),
        items: vec![],
    })
}

/// A server message with ids renumbered 1.. (our checks do not care about server CmdIDs).
fn server(msg_id: u32, session: &str, commands: Vec<Command>, final_: bool) -> SyncML {
    SyncML {
        hdr: SyncHdr {
            ver_dtd: "1.2".into(),
            ver_proto: "DM/1.2".into(),
            session_id: session.into(),
            msg_id: Id::from(msg_id),
            target: Target::uri(DEV),
            source: Source::uri("http://dm.test/dm"),
            ..SyncHdr::default()
        },
        body: SyncBody { commands, final_ },
    }
}

fn reply(m: &SyncML) -> HttpReply {
    HttpReply {
        status: 200,
        content_type: Some(Encoding::Xml.content_type().into()),
        body: encode(m, Encoding::Xml),
        hmac: None,
    }
}

fn decoded(r: &HttpRequest) -> SyncML {
    decode(&r.body, &Limits::default()).unwrap().0
}

/// The code we answered for server command `cmd_ref`.
fn answer(m: &SyncML, cmd_ref: u32) -> Option<u16> {
    m.body.commands.iter().find_map(|c| match c {
        Command::Status(s) if s.cmd_ref == Some(Id::from(cmd_ref)) => Some(s.data.0),
        _ => None,
    })
}

/// Package 1 statuses (Alert = CmdID 1, DevInfo Replace = 2) plus `cmds`.
fn pkg2(cmds: Vec<Command>, final_: bool) -> SyncML {
    let mut all = vec![
        status(1, 0, "SyncHdr", 212),
        status(1, 1, "Alert", 200),
        status(1, 2, "Replace", 200),
    ];
    all.extend(cmds);
    server(1, "1", all, final_)
}

fn chunk(cmd_id: u32, data: &str, size: Option<u64>, more: bool) -> Command {
    Command::Replace(ItemCommand {
        cmd_id: Id::from(cmd_id),
        items: vec![Item {
            target: Some(Target::uri("./FUMO/fw1/PkgName")),
            meta: Some(Meta {
                format: Some(Format::Chr),
                size,
                ..Meta::default()
            }),
            data: Some(Data::Text(data.into())),
            more_data: more,
            ..Item::default()
        }],
        ..ItemCommand::default()
    })
}

fn session(dev: &mut SimDevice) -> ClientSession<'_> {
    ClientSession::new(
        dev,
        "http://dm.test/dm",
        Initiation::Client,
        SessionOptions::default(),
    )
}

#[test]
fn chunked_object_checks() {
    // Good stream: 213 + Alert 1222 without Final, then 200 and the value.
    let mut dev = device();
    let mut s = session(&mut dev);
    s.start().unwrap();
    let r = s.on_reply(reply(&pkg2(vec![chunk(4, "abcd", Some(10), true)], false)));
    let m = decoded(&r.unwrap().unwrap());
    assert_eq!(answer(&m, 4), Some(213));
    assert!(!m.body.final_);
    assert!(
        m.body
            .commands
            .iter()
            .any(|c| matches!(c, Command::Alert(a) if a.data == AlertCode::NEXT_MESSAGE))
    );
    let next = server(
        2,
        "1",
        vec![
            status(2, 0, "SyncHdr", 200),
            chunk(2, "efghij", None, false),
        ],
        true,
    );
    let m = decoded(&s.on_reply(reply(&next)).unwrap().unwrap());
    assert_eq!(answer(&m, 2), Some(200));
    assert!(m.body.final_);
    assert_eq!(s.report().large_objects_received, 1);
    drop(s);
    assert_eq!(
        dev.tree.text("./FUMO/fw1/PkgName").as_deref(),
        Some("abcdefghij")
    );

    // Size above our MaxObjSize (64): 413; no Size: 412; total ≠ Size: 424, nothing stored.
    for (first, last, code) in [
        (chunk(4, "abcd", Some(100), true), None, 413),
        (chunk(4, "abcd", None, true), None, 412),
        (
            chunk(4, "abcd", Some(10), true),
            Some(chunk(2, "ef", None, false)),
            424,
        ),
        (
            chunk(4, "abcd", Some(10), true),
            Some(chunk(2, "ef", Some(10), true)),
            400,
        ),
    ] {
        let mut dev = device();
        let mut s = session(&mut dev);
        s.start().unwrap();
        let m = decoded(
            &s.on_reply(reply(&pkg2(vec![first], false)))
                .unwrap()
                .unwrap(),
        );
        let got = match last {
            None => answer(&m, 4),
            Some(l) => {
                assert_eq!(answer(&m, 4), Some(213));
                let next = server(2, "1", vec![status(2, 0, "SyncHdr", 200), l], true);
                let m = decoded(&s.on_reply(reply(&next)).unwrap().unwrap());
                answer(&m, 2)
            }
        };
        assert_eq!(got, Some(code));
        assert!(
            !s.report().errors.is_empty(),
            "recorded as a server violation"
        );
        drop(s);
        assert_eq!(dev.tree.text("./FUMO/fw1/PkgName").as_deref(), Some(""));
    }
}

#[test]
fn oversized_message_and_bad_references_are_reported() {
    let mut dev = device();
    dev.profile.max_msg_size = 2048;
    dev.profile.max_obj_size = 1 << 20;
    let mut s = session(&mut dev);
    s.start().unwrap();
    let big = "x".repeat(3000);
    let mut m = pkg2(
        vec![status(1, 9, "Replace", 200), chunk(4, &big, None, false)],
        true,
    );
    m.hdr.session_id = "01".into();
    let out = decoded(&s.on_reply(reply(&m)).unwrap().unwrap());
    assert_eq!(answer(&out, 4), Some(200), "still processed");
    let errors = s.report().errors.join("\n");
    assert!(errors.contains("exceeds our MaxMsgSize 2048"), "{errors}");
    assert!(errors.contains("names no command we sent"), "{errors}");
    assert!(errors.contains("SessionID \"01\""), "{errors}");
    assert!(s.report().max_message_seen > 2048);
    // Our reply echoes our SessionID, not the server's wrong one.
    assert_eq!(out.hdr.session_id, "1");
}

#[test]
fn atomic_failure_rolls_back() {
    let mut dev = device();
    let mut s = session(&mut dev);
    s.start().unwrap();
    let replace = |id: u32, uri: &str| {
        Command::Replace(ItemCommand {
            cmd_id: Id::from(id),
            items: vec![Item {
                target: Some(Target::uri(uri)),
                data: Some(Data::Text("new".into())),
                ..Item::default()
            }],
            ..ItemCommand::default()
        })
    };
    let atomic = Command::Atomic(Container {
        cmd_id: Id::from(4),
        commands: vec![
            replace(5, "./FUMO/fw1/PkgName"),
            replace(6, "./DevInfo/Man"),
        ],
        ..Container::default()
    });
    let out = decoded(
        &s.on_reply(reply(&pkg2(vec![atomic], true)))
            .unwrap()
            .unwrap(),
    );
    assert_eq!(answer(&out, 4), Some(507));
    assert_eq!(answer(&out, 5), Some(216));
    assert_eq!(answer(&out, 6), Some(405));
    drop(s);
    assert_eq!(dev.tree.text("./FUMO/fw1/PkgName").as_deref(), Some(""));
}

#[test]
fn session_abort_and_session_end() {
    let mut dev = device();
    let mut s = session(&mut dev);
    s.start().unwrap();
    let abort = Command::Alert(Alert {
        cmd_id: Id::from(4),
        no_resp: false,
        cred: None,
        data: AlertCode::SESSION_ABORT,
        correlator: None,
        items: vec![],
    });
    assert_eq!(
        s.on_reply(reply(&pkg2(vec![abort], true))),
        Err(SimError::Aborted)
    );

    // Statuses only + Final: the session ends without another message.
    let mut dev = device();
    let mut s = session(&mut dev);
    s.start().unwrap();
    assert_eq!(s.on_reply(reply(&pkg2(vec![], true))), Ok(None));
    assert!(s.report().errors.is_empty(), "{:?}", s.report().errors);
}

#[test]
fn server_without_credentials_is_challenged_and_not_obeyed() {
    let mut dev = device();
    dev.profile.server_auth = Some(AuthType::Md5);
    dev.profile.server_secret = "srv".into();
    let before = dev.server_nonce.clone();
    let mut s = session(&mut dev);
    s.start().unwrap();
    let get = Command::Get(ItemCommand {
        cmd_id: Id::from(4),
        items: vec![Item {
            target: Some(Target::uri("./DevInfo/Man")),
            ..Item::default()
        }],
        ..ItemCommand::default()
    });
    let out = decoded(&s.on_reply(reply(&pkg2(vec![get], true))).unwrap().unwrap());
    let Command::Status(h) = &out.body.commands[0] else {
        panic!("SyncHdr status first")
    };
    assert_eq!((h.cmd.as_str(), h.data.0), ("SyncHdr", 407));
    let chal = h.chal.as_ref().expect("Chal with a new nonce");
    assert_eq!(chal.meta.type_.as_deref(), Some("syncml:auth-md5"));
    assert_eq!(answer(&out, 4), Some(407));
    assert!(
        !out.body
            .commands
            .iter()
            .any(|c| matches!(c, Command::Results(_)))
    );
    drop(s);
    assert_ne!(
        dev.server_nonce, before,
        "the Chal's nonce is the one we now expect"
    );
}
