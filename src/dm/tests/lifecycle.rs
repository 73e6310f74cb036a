//! The engine's side of the operation lifecycle: an operation is reported sent once, a
//! package closed without its Status reports NoStatus, unreadable Results reject the
//! operation, a Large Object in flight without its window is abandoned, and only an
//! operation's result may arrive as a Large Object.

use super::golden::{Counter, op, server};
use crate::dm::decode;
use crate::dm::message::*;
use crate::dm::session::*;

fn msg(msg_id: u32, body: &str, final_: bool) -> Vec<u8> {
    format!(
        r#"<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>4</SessionID><MsgID>{msg_id}</MsgID><Target><LocURI>S</LocURI></Target><Source><LocURI>IMEI:1</LocURI></Source></SyncHdr><SyncBody>{body}{}</SyncBody></SyncML>"#,
        if final_ { "<Final/>" } else { "" }
    )
    .into_bytes()
}

fn device() -> DeviceRecord {
    DeviceRecord {
        dev_id: "IMEI:1".into(),
        large_object_support: Some(true),
        ..DeviceRecord::default()
    }
}

fn step(
    st: SessionState,
    body: &[u8],
    queue: &[QueuedOperation],
    window: Option<Window<'_>>,
) -> (Outbound, Vec<Effect>) {
    let cfg = server();
    let (m, enc) = decode(body, &cfg.limits).unwrap();
    handle(
        st,
        Inbound {
            message: &m,
            encoding: enc,
            body,
            hmac_header: None,
            device: &device(),
            queue,
            window,
            server: &cfg,
        },
        0,
        &mut Counter(0),
    )
}

const OPEN: &str = r#"<Alert><CmdID>1</CmdID><Data>1201</Data></Alert>"#;

fn cmd_id_of(o: &Outbound, name: &str) -> String {
    o.message
        .body
        .commands
        .iter()
        .find(|c| c.name() == name)
        .map(|c| c.cmd_id().0.clone())
        .unwrap_or_else(|| panic!("no {name} in the reply"))
}

fn status(cmd_ref: &str, cmd: &str, code: u16) -> String {
    format!(
        r#"<Status><CmdID>2</CmdID><MsgRef>1</MsgRef><CmdRef>{cmd_ref}</CmdRef><Cmd>{cmd}</Cmd><Data>{code}</Data></Status>"#
    )
}

#[test]
fn an_operation_is_reported_sent_once_and_a_closed_package_without_its_status_is_no_status() {
    let q = [op(
        "7",
        Operation::Exec {
            uri: "./FUMO/x/DownloadAndUpdate".into(),
            data: None,
            correlator: Some("job".into()),
        },
        None,
    )];
    let (o, fx) = step(SessionState::default(), &msg(1, OPEN, true), &q, None);
    let sent: Vec<_> = fx
        .iter()
        .filter(|e| matches!(e, Effect::OperationSent { op_id } if op_id == "7"))
        .collect();
    assert_eq!(sent.len(), 1);
    // The device closes its package answering nothing: the command has no status.
    let (o, fx) = step(o.state, &msg(2, "", true), &q, None);
    assert!(fx.contains(&Effect::OperationNotDelivered {
        op_id: "7".into(),
        reason: NotDelivered::NoStatus,
        retry_later: true,
    }));
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::OperationSent { .. })),
        "never sent twice in a session"
    );
    assert!(o.session_over);
}

#[test]
fn results_with_bad_base64_reject_the_operation_with_400() {
    let q = [op("3", Operation::Get { uri: "./X".into() }, None)];
    let (o, _) = step(SessionState::default(), &msg(1, OPEN, true), &q, None);
    let get = cmd_id_of(&o, "Get");
    let results = format!(
        r#"{}<Results><CmdID>3</CmdID><MsgRef>1</MsgRef><CmdRef>{get}</CmdRef><Item><Source><LocURI>./X</LocURI></Source><Meta><Format xmlns="syncml:metinf">b64</Format></Meta><Data>not base64!</Data></Item></Results>"#,
        status(&get, "Get", 200)
    );
    let (o, fx) = step(o.state, &msg(2, &results, true), &q, None);
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::OperationResultsRejected { op_id, reason } if op_id == "3" && reason.contains("base64")
    )));
    assert!(
        !fx.iter()
            .any(|e| matches!(e, Effect::OperationResults { .. })),
        "nothing recorded as the result"
    );
    assert!(o.message.body.commands.iter().any(|c| matches!(
        c,
        Command::Status(s) if s.cmd == "Results" && s.data == StatusCode::BAD_REQUEST
    )));
}

#[test]
fn a_large_object_in_flight_without_its_window_is_abandoned_with_alert_1225() {
    let value = Value {
        format: Format::Bin,
        mime_type: None,
        data: ValueData::Blob(BlobRef {
            key: "operation-values/x".into(),
            size: 200_000,
        }),
    };
    let q = [op(
        "9",
        Operation::Replace {
            uri: "./FUMO/x/Update/PkgData".into(),
            value,
        },
        Some("job"),
    )];
    let payload = vec![7u8; 200_000];
    let cfg = server();
    let first = msg(1, OPEN, true);
    let (m, _) = decode(&first, &cfg.limits).unwrap();
    let request = window_request(&SessionState::default(), &m, &q, &cfg).unwrap();
    assert_eq!((request.op_id.as_str(), request.offset), ("9", 0));
    assert!(request.len < 200_000, "one message's worth, not the value");
    let window = Window {
        op_id: "9",
        offset: 0,
        bytes: &payload[..request.len as usize],
    };
    let (o, fx) = step(SessionState::default(), &first, &q, Some(window));
    assert!(fx.contains(&Effect::OperationSent { op_id: "9".into() }));
    let sent = o.state.outgoing.as_ref().unwrap().offset;
    assert!(sent > 0 && sent <= request.len as usize);
    let chunk = cmd_id_of(&o, "Replace");
    // The device acknowledges the chunk; the edge found no bytes for the rest (the blob is gone).
    let ack = format!(
        "{}<Alert><CmdID>3</CmdID><Data>1222</Data></Alert>",
        status(&chunk, "Replace", 213)
    );
    let (o, fx) = step(o.state, &msg(2, &ack, false), &[], None);
    assert!(o.message.body.commands.iter().any(|c| matches!(
        c,
        Command::Alert(a) if a.data == AlertCode::NO_END_OF_DATA
    )));
    assert!(fx.contains(&Effect::OperationNotDelivered {
        op_id: "9".into(),
        reason: NotDelivered::LargeObjectFailed { status: None },
        retry_later: true,
    }));
    assert_eq!(
        o.state.broken_groups[0].group, "job",
        "its group is held back"
    );
}

#[test]
fn only_an_operation_result_may_arrive_as_a_large_object() {
    let (o, _) = step(SessionState::default(), &msg(1, OPEN, true), &[], None);
    let chunk = r#"<Results><CmdID>2</CmdID><MsgRef>1</MsgRef><CmdRef>99</CmdRef><Item><Source><LocURI>./Big</LocURI></Source><Meta><Size xmlns="syncml:metinf">10</Size></Meta><Data>hello</Data><MoreData/></Item></Results>"#;
    let (o, fx) = step(o.state, &msg(2, chunk, false), &[], None);
    assert!(o.message.body.commands.iter().any(|c| matches!(
        c,
        Command::Status(s) if s.cmd == "Results" && s.data == StatusCode::OPTIONAL_FEATURE_NOT_SUPPORTED
    )));
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::ResultChunk { .. })),
        "nowhere to stage it"
    );
    assert!(o.state.incoming.is_none());
}
