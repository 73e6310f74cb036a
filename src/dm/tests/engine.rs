//! Engine behaviours beyond the golden files: limits, retry cap, aborts, retransmission,
//! HMAC per message, device multi-message packages.

use super::golden::{Counter, md5_device, server};
use crate::dm::auth::*;
use crate::dm::message::*;
use crate::dm::session::*;
use crate::dm::{DecodeError, Limits, decode};

fn msg(msg_id: u32, hdr_extra: &str, body: &str, final_: bool) -> Vec<u8> {
    format!(
        r#"<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>9</SessionID><MsgID>{msg_id}</MsgID><Target><LocURI>S</LocURI></Target><Source><LocURI>IMEI:356938035643809</LocURI><LocName>Bruce2</LocName></Source>{hdr_extra}</SyncHdr><SyncBody>{body}{}</SyncBody></SyncML>"#,
        if final_ { "<Final/>" } else { "" }
    )
    .into_bytes()
}

fn md5_cred(data: &str) -> String {
    format!(
        r#"<Cred><Meta><Type xmlns="syncml:metinf">syncml:auth-md5</Type><Format xmlns="syncml:metinf">b64</Format></Meta><Data>{data}</Data></Cred>"#
    )
}

fn step(
    st: SessionState,
    body: &[u8],
    dev: &DeviceRecord,
    hmac: Option<&str>,
) -> (Outbound, Vec<Effect>) {
    let cfg = server();
    let (m, enc) = decode(body, &cfg.limits).unwrap();
    handle(
        st,
        Inbound {
            message: &m,
            encoding: enc,
            body,
            hmac_header: hmac,
            device: dev,
            queue: &[],
            window: None,
            server: &cfg,
        },
        0,
        &mut Counter(0),
    )
}

fn hdr_code(o: &Outbound) -> StatusCode {
    match &o.message.body.commands[0] {
        Command::Status(s) => s.data,
        _ => panic!(),
    }
}

#[test]
fn limits_checked_before_and_while_decoding() {
    let l = Limits {
        max_message_bytes: 100,
        max_depth: 4,
        max_elements: 10,
    };
    assert!(matches!(
        decode(&[b'<'; 101], &l),
        Err(DecodeError::TooLarge { .. })
    ));
    let deep = b"<SyncML><a><b><c><d><e/></d></c></b></a></SyncML>";
    assert_eq!(decode(deep, &l), Err(DecodeError::TooDeep { limit: 4 }));
    let wide = b"<SyncML><a/><a/><a/><a/><a/><a/><a/><a/><a/><a/></SyncML>";
    assert_eq!(
        decode(wide, &l),
        Err(DecodeError::TooManyElements { limit: 10 })
    );
    let e = decode(
        b"<!DOCTYPE x [<!ENTITY a 'b'>]><SyncML>&a;</SyncML>",
        &Limits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(e, DecodeError::Xml(_)),
        "custom entities are never expanded"
    );
    assert_eq!(
        DecodeError::TooLarge { size: 1, limit: 0 }.http_status(),
        413
    );
    assert_eq!(
        decode(b"hello", &Limits::default())
            .unwrap_err()
            .http_status(),
        400
    );
}

#[test]
fn wrong_credentials_401_then_give_up_after_cap() {
    let dev = md5_device();
    let (o, fx) = step(
        SessionState::default(),
        &msg(1, &md5_cred("AAAAAAAAAAAAAAAAAAAAAA=="), "", true),
        &dev,
        None,
    );
    assert_eq!(hdr_code(&o), StatusCode::INVALID_CREDENTIALS);
    assert!(
        matches!(&o.message.body.commands[0], Command::Status(s) if s.chal.as_ref().unwrap().meta.next_nonce.is_some())
    );
    assert!(fx.iter().any(|e| matches!(e, Effect::StoreClientNonce(_))));
    let mut st = o.state;
    for i in 2..=3 {
        let (o, _) = step(
            st,
            &msg(i, &md5_cred("AAAAAAAAAAAAAAAAAAAAAA=="), "", true),
            &dev,
            None,
        );
        st = o.state.clone();
        if i == 3 {
            assert!(o.session_over, "cap of 2 retries reached");
            assert!(matches!(&o.message.body.commands[0], Command::Status(s) if s.chal.is_none()));
        }
    }
}

#[test]
fn hmac_checked_every_message_with_new_nonce_and_status_200() {
    let mut dev = md5_device();
    dev.client.as_mut().unwrap().auth_type = AuthType::Hmac;
    let hash = CredentialHash::compute("Bruce2", "OhBehave");
    let b1 = msg(
        1,
        "",
        r#"<Alert><CmdID>1</CmdID><Data>1200</Data></Alert>"#,
        false,
    );
    let h1 = HmacHeader {
        algorithm: None,
        username: "Bruce2".into(),
        mac: hmac_mac(&hash, b"Nonce", &b1),
    }
    .format();
    let (o, _) = step(SessionState::default(), &b1, &dev, Some(&h1));
    assert_eq!(hdr_code(&o), StatusCode::OK);
    let next = o.state.client_nonce.clone().unwrap();
    // Second message: the old nonce no longer works, the new one does.
    let b2 = msg(2, "", "", true);
    let stale = HmacHeader {
        algorithm: None,
        username: "Bruce2".into(),
        mac: hmac_mac(&hash, b"Nonce", &b2),
    }
    .format();
    let (bad, _) = step(o.state.clone(), &b2, &dev, Some(&stale));
    assert_eq!(hdr_code(&bad), StatusCode::INVALID_CREDENTIALS);
    let good = HmacHeader {
        algorithm: None,
        username: "Bruce2".into(),
        mac: hmac_mac(&hash, &next.0, &b2),
    }
    .format();
    let (ok, _) = step(o.state, &b2, &dev, Some(&good));
    assert_eq!(hdr_code(&ok), StatusCode::OK);
}

#[test]
fn device_multi_message_package_gets_1222_without_final() {
    let dev = DeviceRecord {
        dev_id: "IMEI:356938035643809".into(),
        ..DeviceRecord::default()
    };
    let (o, _) = step(
        SessionState::default(),
        &msg(
            1,
            "",
            r#"<Alert><CmdID>1</CmdID><Data>1201</Data></Alert>"#,
            false,
        ),
        &dev,
        None,
    );
    assert!(!o.message.body.final_);
    assert!(
        matches!(o.message.body.commands.last(), Some(Command::Alert(a)) if a.data == AlertCode::NEXT_MESSAGE)
    );
}

#[test]
fn session_abort_1223_answered_with_statuses_and_final() {
    let dev = DeviceRecord {
        dev_id: "IMEI:356938035643809".into(),
        ..DeviceRecord::default()
    };
    let (o, fx) = step(
        SessionState::default(),
        &msg(
            1,
            "",
            r#"<Alert><CmdID>1</CmdID><Data>1223</Data></Alert>"#,
            true,
        ),
        &dev,
        None,
    );
    assert!(o.session_over && o.message.body.final_);
    assert!(
        o.message
            .body
            .commands
            .iter()
            .all(|c| matches!(c, Command::Status(_)))
    );
    assert!(fx.contains(&Effect::SessionEnded {
        outcome: SessionOutcome::AbortedByDevice
    }));
}

#[test]
fn retransmitted_request_gets_identical_reply_and_no_effects() {
    let dev = md5_device();
    let b = msg(1, &md5_cred("Zz6EivR3yeaaENcRN6lpAQ=="), "", true);
    let (o1, fx1) = step(SessionState::default(), &b, &dev, None);
    assert!(!fx1.is_empty());
    let (o2, fx2) = step(o1.state.clone(), &b, &dev, None);
    assert_eq!(o1.body, o2.body);
    assert!(fx2.is_empty());
}

#[test]
fn chunked_results_from_device_reassembled() {
    use super::golden::op;
    let dev = DeviceRecord {
        dev_id: "IMEI:356938035643809".into(),
        ..DeviceRecord::default()
    };
    let cfg = server();
    let q = [op(
        "get",
        Operation::Get {
            uri: "./Big".into(),
        },
        None,
    )];
    let run = |st: SessionState, body: &[u8]| {
        let (m, enc) = decode(body, &cfg.limits).unwrap();
        handle(
            st,
            Inbound {
                message: &m,
                encoding: enc,
                body,
                hmac_header: None,
                device: &dev,
                queue: &q,
                window: None,
                server: &cfg,
            },
            0,
            &mut Counter(0),
        )
    };
    let (o, _) = run(
        SessionState::default(),
        &msg(
            1,
            "",
            r#"<Alert><CmdID>1</CmdID><Data>1200</Data></Alert>"#,
            true,
        ),
    );
    let get = o
        .message
        .body
        .commands
        .iter()
        .find_map(|c| {
            if let Command::Get(g) = c {
                Some(g.cmd_id.clone())
            } else {
                None
            }
        })
        .unwrap();
    let chunk = |more: bool, size: &str, data: &str| {
        format!(
            r#"<Results><CmdID>2</CmdID><MsgRef>1</MsgRef><CmdRef>{get}</CmdRef><Item><Source><LocURI>./Big</LocURI></Source><Meta>{size}</Meta><Data>{data}</Data>{}</Item></Results>"#,
            if more { "<MoreData/>" } else { "" }
        )
    };
    let st1 = format!(
        r#"<Status><CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>{get}</CmdRef><Cmd>Get</Cmd><Data>200</Data></Status>"#
    );
    let b2 = msg(
        2,
        "",
        &(st1 + &chunk(true, r#"<Size xmlns="syncml:metinf">10</Size>"#, "hello")),
        false,
    );
    let (o, fx2) = run(o.state, &b2);
    assert!(
        o.message.body.commands.iter().any(
            |c| matches!(c, Command::Status(s) if s.data == StatusCode::CHUNKED_ITEM_ACCEPTED)
        )
    );
    let st = o.state.to_json().unwrap();
    assert!(
        !st.contains("hello") && !st.contains("aGVsbG"),
        "no chunk data in the state"
    );
    let (o, fx) = run(o.state, &msg(3, "", &chunk(false, "", "world"), true));
    // The chunks go out as effects in order; the state keeps no data.
    let chunks: Vec<(u32, Vec<u8>)> = fx2
        .iter()
        .chain(&fx)
        .filter_map(|e| match e {
            Effect::ResultChunk { seq, bytes, .. } => Some((*seq, bytes.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(chunks, vec![(0, b"hello".to_vec()), (1, b"world".to_vec())]);
    let chain = crate::dm::large_object::chain_digest(
        &crate::dm::large_object::chain_digest("", b"hello"),
        b"world",
    );
    assert!(fx.contains(&Effect::ResultObject {
        op_id: "get".into(),
        uri: "./Big".into(),
        format: None,
        mime_type: None,
        b64: false,
        transmitted_len: 10,
        chunks: 2,
        chain,
    }));
    assert!(
        !fx.iter()
            .any(|e| matches!(e, Effect::OperationResults { .. })),
        "a Large Object result is published by reference, not inline"
    );
    assert!(o.state.incoming.is_none());
}
