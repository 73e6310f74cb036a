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
    deliver_as(payload, max_msg, enc, false)
}

/// The same with the value stored by reference (a blob) and this harness acting as the
/// database edge: an operation leaves the queue once sent, and the engine gets only the
/// window it asks for, never more than one message's worth.
pub(crate) fn deliver_by_reference(payload: &[u8], max_msg: u64, enc: Encoding) -> Vec<u8> {
    deliver_as(payload, max_msg, enc, true)
}

fn deliver_as(payload: &[u8], max_msg: u64, enc: Encoding, by_reference: bool) -> Vec<u8> {
    let cfg = server();
    let device = DeviceRecord {
        dev_id: "IMEI:1".into(),
        large_object_support: Some(true),
        ..DeviceRecord::default()
    };
    let value = if by_reference {
        Value {
            format: Format::Bin,
            mime_type: Some("application/octet-stream".into()),
            data: ValueData::Blob(BlobRef {
                key: "operation-values/x".into(),
                size: payload.len() as u64,
            }),
        }
    } else {
        Value::bytes("application/octet-stream", payload.to_vec())
    };
    let mut queue = vec![op(
        "obj",
        Operation::Replace {
            uri: "./FUMO/x/Update/PkgData".into(),
            value,
        },
        None,
    )];
    let mut sent = 0;
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
    // The device's own buffer: the engine's bookkeeping keeps no data.
    let mut received = Vec::new();
    let mut result = Vec::new();
    for n in 2..10_000u32 {
        let body = encode(&msg, enc);
        let (decoded, _) = decode(&body, &cfg.limits).unwrap();
        let request = window_request(&state, &decoded, &queue, &cfg);
        let window = match (&request, by_reference) {
            (Some(r), true) => {
                assert!(r.len <= max_msg, "a window of {} bytes asked for", r.len);
                let start = r.offset as usize;
                Some(Window {
                    op_id: &r.op_id,
                    offset: r.offset,
                    bytes: &payload[start..start + r.len as usize],
                })
            }
            _ => None,
        };
        let input = Inbound {
            message: &decoded,
            encoding: enc,
            body: &body,
            hmac_header: None,
            device: &device,
            queue: &queue,
            window,
            server: &cfg,
        };
        let (out, fx) = handle(state, input, 0, &mut rng);
        for e in &fx {
            if let Effect::OperationSent { op_id } = e {
                sent += 1;
                if by_reference {
                    // The store marks it sent: it is not in the next queue read.
                    queue.retain(|q| q.id != *op_id);
                }
            }
        }
        assert!(sent <= 1, "sent twice");
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
                    let (r, bytes) =
                        Reassembly::start(item, u64::MAX).expect("first chunk has Size");
                    reassembly = Some(r);
                    received = bytes;
                    StatusCode::CHUNKED_ITEM_ACCEPTED
                }
                (Some(r), more) => match r.push(item) {
                    ChunkOutcome::Buffered(bytes) => {
                        received.extend(bytes);
                        StatusCode::CHUNKED_ITEM_ACCEPTED
                    }
                    ChunkOutcome::Complete(bytes) => {
                        assert!(!more);
                        received.extend(bytes);
                        result = if r.is_b64() {
                            use base64::Engine as _;
                            base64::engine::general_purpose::STANDARD
                                .decode(&received)
                                .unwrap()
                        } else {
                            std::mem::take(&mut received)
                        };
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
