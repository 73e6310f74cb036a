//! A minimal device for Large Object tests: answers chunks with 213 + Alert 1222 and
//! reassembles with the same rules a strict client (Sprint) applies.

use crate::dm::large_object::{ChunkOutcome, Reassembly};
use crate::dm::message::*;
use crate::dm::session::*;
use crate::dm::{Encoding, decode, encode};

use super::golden::{Counter, op, server};

fn device_msg(msg_id: u32, max_msg: u64, body: Vec<Command>, final_: bool) -> SyncML {
    SyncML {
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
            commands: body,
            final_,
        },
    }
}

fn status(reply: &SyncML, cmd_ref: &Id, cmd: &str, code: StatusCode) -> Command {
    Command::Status(Status {
        cmd_id: Id::from(1),
        msg_ref: Some(reply.hdr.msg_id.clone()),
        cmd_ref: Some(cmd_ref.clone()),
        cmd: cmd.into(),
        target_ref: vec![],
        source_ref: vec![],
        cred: None,
        chal: None,
        data: code,
        items: vec![],
    })
}

/// Runs a whole session delivering `payload` and returns what the device reassembled.
pub(crate) fn deliver(payload: &[u8], max_msg: u64, enc: Encoding) -> Vec<u8> {
    let cfg = server();
    let device = DeviceRecord {
        dev_id: "IMEI:1".into(),
        large_object_support: Some(true),
        ..DeviceRecord::default()
    };
    let queue = vec![op(
        "obj",
        Operation::Replace {
            uri: "./FUMO/x/Update/PkgData".into(),
            value: Value::bytes("application/octet-stream", payload.to_vec()),
        },
        None,
    )];
    let mut rng = Counter(0);
    let mut state = SessionState::default();
    let alert = Command::Alert(Alert {
        cmd_id: Id::from(1),
        no_resp: false,
        cred: None,
        data: AlertCode::SERVER_INITIATED_MGMT,
        correlator: None,
        items: vec![],
    });
    let mut msg = device_msg(1, max_msg, vec![alert], true);
    let mut reassembly: Option<Reassembly> = None;
    let mut result = Vec::new();
    for n in 2..10_000u32 {
        let body = encode(&msg, enc);
        let (decoded, _) = decode(&body, &cfg.limits).unwrap();
        let input = Inbound {
            message: &decoded,
            encoding: enc,
            body: &body,
            hmac_header: None,
            device: &device,
            queue: &queue,
            server: &cfg,
        };
        let (out, _fx) = handle(state, input, 0, &mut rng);
        assert!(
            out.body.len() as u64 <= max_msg,
            "reply {} > {max_msg}",
            out.body.len()
        );
        state = out.state;
        if out.session_over {
            return result;
        }
        let reply = decode(&out.body, &cfg.limits).unwrap().0;
        let mut answer = vec![status(&reply, &Id::from(0), "SyncHdr", StatusCode::OK)];
        let mut final_ = true;
        for c in &reply.body.commands {
            let Command::Replace(r) = c else { continue };
            let item = &r.items[0];
            let code = match (&mut reassembly, item.more_data) {
                (None, true) => {
                    reassembly =
                        Some(Reassembly::start(item, u64::MAX).expect("first chunk has Size"));
                    StatusCode::CHUNKED_ITEM_ACCEPTED
                }
                (Some(r), more) => match r.push(item) {
                    ChunkOutcome::Buffered => StatusCode::CHUNKED_ITEM_ACCEPTED,
                    ChunkOutcome::Complete(v) => {
                        assert!(!more);
                        result = v;
                        reassembly = None;
                        StatusCode::OK
                    }
                    ChunkOutcome::Failed(c) => panic!("device rejected chunk: {c}"),
                },
                (None, false) => {
                    // Fits in one message: no Size, no MoreData.
                    assert!(item.meta.as_ref().and_then(|m| m.size).is_none());
                    result = match item.data.as_ref().unwrap() {
                        Data::Opaque(b) => b.clone(),
                        Data::Text(t) => {
                            use base64::Engine as _;
                            base64::engine::general_purpose::STANDARD.decode(t).unwrap()
                        }
                        Data::Elements(_) => panic!(),
                    };
                    StatusCode::OK
                }
            };
            assert_eq!(
                reply.body.final_,
                code == StatusCode::OK,
                "Final only with the last chunk"
            );
            answer.push(status(&reply, &r.cmd_id, "Replace", code));
            if code == StatusCode::CHUNKED_ITEM_ACCEPTED {
                final_ = false;
                answer.push(Command::Alert(Alert {
                    cmd_id: Id::from(9),
                    no_resp: false,
                    cred: None,
                    data: AlertCode::NEXT_MESSAGE,
                    correlator: None,
                    items: vec![],
                }));
            }
        }
        msg = device_msg(n, max_msg, answer, final_);
    }
    panic!("session did not end");
}
