//! One test per interoperability trap of brief section 9 (numbered as there).

use super::golden::{Counter, md5_device, op, server};
use super::vectors::testdata;
use crate::dm::auth::*;
use crate::dm::message::*;
use crate::dm::session::*;
use crate::dm::{Encoding, Limits, decode, encode};

const PKG1: &str = r#"<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>SID</SessionID><MsgID>1</MsgID><Target><LocURI>https://dm.example.net/dm</LocURI></Target><Source><LocURI>IMEI:1</LocURI></Source>HDR</SyncHdr><SyncBody><Alert><CmdID>1</CmdID><Data>1200</Data></Alert>BODY<Final/></SyncBody></SyncML>"#;

fn pkg1(sid: &str, hdr: &str, body: &str) -> Vec<u8> {
    PKG1.replace("SID", sid)
        .replace("HDR", hdr)
        .replace("BODY", body)
        .into_bytes()
}

fn open_device() -> DeviceRecord {
    DeviceRecord {
        dev_id: "IMEI:1".into(),
        ..DeviceRecord::default()
    }
}

fn run_one(
    body: &[u8],
    device: &DeviceRecord,
    queue: &[QueuedOperation],
    hmac: Option<&str>,
) -> (Outbound, Vec<Effect>) {
    let cfg = server();
    let (msg, enc) = decode(body, &cfg.limits).unwrap();
    let input = Inbound {
        message: &msg,
        encoding: enc,
        body,
        hmac_header: hmac,
        device,
        queue,
        window: None,
        server: &cfg,
    };
    handle(SessionState::default(), input, 0, &mut Counter(0))
}

fn statuses(m: &SyncML) -> Vec<&Status> {
    m.body
        .commands
        .iter()
        .filter_map(|c| {
            if let Command::Status(s) = c {
                Some(s)
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn trap01_session_id_echoed_verbatim() {
    let (out, _) = run_one(&pkg1("00ab", "", ""), &open_device(), &[], None);
    assert_eq!(out.message.hdr.session_id, "00ab");
}

#[test]
fn trap02_pkg0_session_id_is_uppercase_hex_without_leading_zeros() {
    assert_eq!(crate::dm::package0::session_id_text(0x00AB), "AB");
    assert_eq!(crate::dm::package0::session_id_text(0xFFFF), "FFFF");
}

#[test]
fn trap03_nonce_is_decoded_exactly_once() {
    // libdmclient issues base64 of an ASCII base64 string; one decode yields that string.
    let n = Nonce::from_b64("VG05dVkyVT0=").unwrap();
    assert_eq!(n.0, b"Tm9uY2U=");
}

#[test]
fn trap04_base64_is_standard_padded_single_line() {
    let n = Nonce(vec![0xFB; 40]);
    let t = n.to_b64();
    assert!(t.ends_with('=') && !t.contains('\n') && !t.contains('-') && !t.contains('_'));
}

#[test]
fn trap05_cred_only_in_synchdr_with_format_b64_and_hmac_in_header() {
    let mut d = md5_device();
    d.client = None;
    let (out, _) = run_one(&pkg1("1", "", ""), &d, &[], None);
    let cred = out
        .message
        .hdr
        .cred
        .as_ref()
        .expect("server Cred in the first message");
    assert_eq!(cred.meta.as_ref().unwrap().format, Some(Format::B64));
    d.server.as_mut().unwrap().auth_type = AuthType::Hmac;
    let (out, _) = run_one(&pkg1("1", "", ""), &d, &[], None);
    assert!(out.message.hdr.cred.is_none());
    let h = HmacHeader::parse(out.hmac_header.as_deref().unwrap()).unwrap();
    let hash = CredentialHash::compute("dmsrv", "srvsecret");
    assert!(verify_hmac(&hash, b"SrvNonce1", &out.body, &h.mac));
}

#[test]
fn trap06_item_level_meta_emitted() {
    let q = [op(
        "r",
        Operation::Replace {
            uri: "./A".into(),
            value: Value::text(Format::Int, "5"),
        },
        None,
    )];
    let (out, _) = run_one(&pkg1("1", "", ""), &open_device(), &q, None);
    let Some(Command::Replace(r)) = out
        .message
        .body
        .commands
        .iter()
        .find(|c| matches!(c, Command::Replace(_)))
    else {
        panic!()
    };
    assert!(r.meta.is_none());
    assert_eq!(r.items[0].meta.as_ref().unwrap().format, Some(Format::Int));
}

#[test]
fn trap07_metinf_namespace_on_each_child_not_on_meta() {
    let (out, _) = run_one(&pkg1("1", "", ""), &open_device(), &[], None);
    let xml = String::from_utf8(out.body).unwrap();
    assert!(
        xml.contains(r#"<Meta><MaxMsgSize xmlns="syncml:metinf">"#),
        "{xml}"
    );
    assert!(!xml.contains(r#"<Meta xmlns"#));
}

#[test]
fn trap08_every_status_has_msgref_and_cmdref() {
    let (out, _) = run_one(&pkg1("1", "", ""), &open_device(), &[], None);
    let st = statuses(&out.message);
    assert!(!st.is_empty());
    assert!(
        st.iter()
            .all(|s| s.msg_ref.is_some() && s.cmd_ref.is_some())
    );
    assert_eq!(st[0].cmd_ref.as_ref().unwrap().as_str(), "0");
}

#[test]
fn trap09_loc_uri_forms_normalised() {
    assert_eq!(normalize_uri("DevInfo/Man"), "./DevInfo/Man");
    assert_eq!(normalize_uri("./DevInfo/Man"), "./DevInfo/Man");
    assert_eq!(normalize_uri(".x/Update"), "./x/Update");
    assert_eq!(normalize_uri("."), ".");
}

fn generic_alert(ty: &str, format: &str, data: &str, source: &str) -> Vec<u8> {
    pkg1(
        "1",
        "",
        &format!(
            r#"<Alert><CmdID>2</CmdID><Data>1226</Data><Item><Source><LocURI>{source}</LocURI></Source><Meta><Type xmlns="syncml:metinf">{ty}</Type><Format xmlns="syncml:metinf">{format}</Format></Meta><Data>{data}</Data></Item></Alert>"#
        ),
    )
}

fn alert_of(fx: &[Effect]) -> AlertRecord {
    fx.iter()
        .find_map(|e| {
            if let Effect::Alert(a) = e {
                Some(a.clone())
            } else {
                None
            }
        })
        .unwrap()
}

#[test]
fn trap10_fumo_report_data_parsed_whatever_format() {
    for (f, d) in [
        ("int", "200"),
        ("chr", "402"),
        ("text/plain", " 410\n"),
        ("int", "garbage"),
    ] {
        let (_, fx) = run_one(
            &generic_alert(
                "org.openmobilealliance.dm.firmwareupdate.update",
                f,
                d,
                "./FUMO/x",
            ),
            &open_device(),
            &[],
            None,
        );
        let digits: String = d.chars().filter(char::is_ascii_digit).collect();
        assert_eq!(alert_of(&fx).result_code, digits.parse().ok());
    }
}

#[test]
fn trap11_alert_type_prefix_trimmed() {
    let (_, fx) = run_one(
        &generic_alert(
            "  Reversed-Domain-Name: org.openmobilealliance.dm.firmwareupdate.download ",
            "int",
            "200",
            "./F",
        ),
        &open_device(),
        &[],
        None,
    );
    assert_eq!(
        alert_of(&fx).alert_type.as_deref(),
        Some("org.openmobilealliance.dm.firmwareupdate.download")
    );
}

#[test]
fn trap12_generic_alert_source_x_or_exec_node() {
    for s in ["./FUMO/x", "FUMO/x/Update"] {
        let (_, fx) = run_one(
            &generic_alert("t", "int", "200", s),
            &open_device(),
            &[],
            None,
        );
        assert!(alert_of(&fx).source.unwrap().starts_with("./FUMO/x"));
    }
}

#[test]
fn trap13_large_object_not_sent_without_lrgobj_and_probe_first() {
    let big = vec![7u8; 40_000];
    let q = [op(
        "o",
        Operation::Replace {
            uri: "./F/PkgData".into(),
            value: Value::bytes("application/octet-stream", big),
        },
        None,
    )];
    // Unknown LrgObj: the engine asks first instead of chunking.
    let (out, _) = run_one(&pkg1("1", "", ""), &open_device(), &q, None);
    let Some(Command::Get(g)) = out.message.body.commands.last() else {
        panic!("{:?}", out.message.body.commands)
    };
    assert_eq!(
        g.items[0].target.as_ref().unwrap().loc_uri,
        "./DevDetail/LrgObj"
    );
    // LrgObj false (libdmclient-style devices that must not be chunked to): not delivered.
    let dev = DeviceRecord {
        large_object_support: Some(false),
        ..open_device()
    };
    let (out, fx) = run_one(&pkg1("1", "", ""), &dev, &q, None);
    assert!(
        !out.message
            .body
            .commands
            .iter()
            .any(|c| matches!(c, Command::Replace(_)))
    );
    assert!(fx.contains(&Effect::OperationNotDelivered {
        op_id: "o".into(),
        reason: NotDelivered::LargeObjectsUnsupported,
        retry_later: false
    }));
}

#[test]
fn trap14_reply_within_device_max_msg_size() {
    let q: Vec<_> = (0..200)
        .map(|i| {
            op(
                &format!("g{i}"),
                Operation::Get {
                    uri: format!("./Vendor/Node/{i}/WithALongishName"),
                },
                None,
            )
        })
        .collect();
    let hdr = r#"<Meta><MaxMsgSize xmlns="syncml:metinf">3500</MaxMsgSize></Meta>"#;
    let (out, _) = run_one(&pkg1("1", hdr, ""), &open_device(), &q, None);
    assert!(out.body.len() <= 3500, "{}", out.body.len());
    assert!(
        out.message
            .body
            .commands
            .iter()
            .filter(|c| matches!(c, Command::Get(_)))
            .count()
            > 5
    );
}

#[test]
fn trap15_content_type_sniffed_from_bytes() {
    assert!(Encoding::is_syncml_content_type(
        "application/vnd.syncml+wbxml"
    ));
    assert!(Encoding::is_syncml_content_type(
        "application/vnd.syncml.dm+xml; charset=UTF-8"
    ));
    assert_eq!(
        Encoding::sniff(b"\xEF\xBB\xBF  <SyncML/>"),
        Some(Encoding::Xml)
    );
    assert_eq!(
        Encoding::sniff(&[0x02, 0x00, 0x00, 0x6A]),
        Some(Encoding::Wbxml)
    );
    assert_eq!(Encoding::sniff(b"GET / HTTP/1.1"), None);
}

#[test]
fn trap16_both_wbxml_public_id_forms() {
    let string_form = testdata("wbxml/testreplace.wbxml");
    let (m, _) = decode(&string_form, &Limits::default()).unwrap();
    let numeric = encode(&m, Encoding::Wbxml);
    assert_eq!(&numeric[..5], &[0x02, 0xA4, 0x01, 0x6A, 0x00]);
    assert_eq!(decode(&numeric, &Limits::default()).unwrap().0, m);
}

#[test]
fn trap17_element_order_free() {
    let a = br#"<SyncML xmlns="SYNCML:SYNCML1.2"><SyncBody><Final/><Alert><Correlator>c1</Correlator><Data>1226</Data><CmdID>3</CmdID></Alert></SyncBody><SyncHdr><Source><LocURI>D</LocURI></Source><MsgID>1</MsgID><SessionID>1</SessionID><Target><LocURI>S</LocURI></Target><VerProto>DM/1.2</VerProto><VerDTD>1.2</VerDTD></SyncHdr></SyncML>"#;
    let (m, _) = decode(a, &Limits::default()).unwrap();
    let Command::Alert(al) = &m.body.commands[0] else {
        panic!()
    };
    assert_eq!(
        (al.cmd_id.as_str(), al.data, al.correlator.as_deref()),
        ("3", AlertCode::GENERIC_ALERT, Some("c1"))
    );
    assert!(m.body.final_);
}

#[test]
fn trap18_server_cred_until_device_accepts_it() {
    let mut d = md5_device();
    d.client = None;
    let (out, _) = run_one(&pkg1("1", "", ""), &d, &[], None);
    assert_eq!(
        out.message.hdr.cred.as_ref().unwrap().data,
        "uYBXn75mUr75MxVi1D61vQ=="
    );
}

#[test]
fn trap19_ordered_steps_use_sequence_not_atomic() {
    let q = [
        op(
            "a",
            Operation::Replace {
                uri: "./F/PkgURL".into(),
                value: Value::text(Format::Chr, "u"),
            },
            Some("g"),
        ),
        op(
            "b",
            Operation::Exec {
                uri: "./F/DownloadAndUpdate".into(),
                data: None,
                correlator: Some("c".into()),
            },
            Some("g"),
        ),
    ];
    let (out, _) = run_one(&pkg1("1", "", ""), &open_device(), &q, None);
    let cmds = &out.message.body.commands;
    assert!(
        cmds.iter()
            .any(|c| matches!(c, Command::Sequence(s) if s.commands.len() == 2))
    );
    assert!(!cmds.iter().any(|c| matches!(c, Command::Atomic(_))));
}

#[test]
fn trap20_user_no_and_cancel_codes_recorded_as_is() {
    assert_eq!(StatusCode::NOT_MODIFIED.0, 304);
    assert_eq!(StatusCode::OPERATION_CANCELLED.0, 214);
    assert_eq!(StatusCode::NOT_EXECUTED.0, 215);
    assert!(!StatusCode::NOT_MODIFIED.is_success());
}

#[test]
fn trap21_pkg0_unverifiable_by_libdmclient_still_parses() {
    // The digest may be wrong (libdmclient's check cannot succeed) yet the trigger fields
    // still parse, so a simulator can model that client falling back to polling.
    let srv = CredentialHash::compute("s", "p");
    let n = crate::dm::package0::Notification {
        version: 11,
        ui_mode: crate::dm::package0::UiMode::Background,
        initiator: crate::dm::package0::Initiator::Server,
        session_id: 0x1234,
        server_id: "s".into(),
        vendor_specific: vec![],
    };
    let mut bytes = n.build(&srv, b"x").unwrap();
    bytes[0] ^= 0xFF;
    let p = crate::dm::package0::ParsedPackage0::parse(&bytes).unwrap();
    assert!(!p.verify(&srv, b"x"));
    assert_eq!(p.notification, n);
}

#[test]
fn trap22_exec_200_accepted_like_202() {
    let q = [op(
        "e",
        Operation::Exec {
            uri: "./F/Update".into(),
            data: None,
            correlator: Some("c".into()),
        },
        None,
    )];
    let cfg = server();
    let dev = open_device();
    let first = pkg1("1", "", "");
    let (m1, _) = decode(&first, &cfg.limits).unwrap();
    let (out, _) = handle(
        SessionState::default(),
        Inbound {
            message: &m1,
            encoding: Encoding::Xml,
            body: &first,
            hmac_header: None,
            device: &dev,
            queue: &q,
            window: None,
            server: &cfg,
        },
        0,
        &mut Counter(0),
    );
    let exec_id = out
        .message
        .body
        .commands
        .iter()
        .find_map(|c| {
            if let Command::Exec(e) = c {
                Some(e.cmd_id.clone())
            } else {
                None
            }
        })
        .unwrap();
    let second = format!(
        r#"<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>1</SessionID><MsgID>2</MsgID><Target><LocURI>S</LocURI></Target><Source><LocURI>IMEI:1</LocURI></Source></SyncHdr><SyncBody><Status><CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>{exec_id}</CmdRef><Cmd>Exec</Cmd><Data>200</Data></Status><Final/></SyncBody></SyncML>"#
    );
    let (m2, _) = decode(second.as_bytes(), &cfg.limits).unwrap();
    let (_, fx) = handle(
        out.state,
        Inbound {
            message: &m2,
            encoding: Encoding::Xml,
            body: second.as_bytes(),
            hmac_header: None,
            device: &dev,
            queue: &q,
            window: None,
            server: &cfg,
        },
        1,
        &mut Counter(0),
    );
    assert!(fx.contains(&Effect::OperationStatus {
        op_id: "e".into(),
        status: StatusCode::OK
    }));
}

#[test]
fn trap23_devinfo_items_without_meta_recorded() {
    let (_, fx) = run_one(
        &pkg1(
            "1",
            "",
            r#"<Replace><CmdID>2</CmdID><Item><Source><LocURI>./DevInfo/Man</LocURI></Source><Data>Moto</Data></Item></Replace>"#,
        ),
        &open_device(),
        &[],
        None,
    );
    assert!(fx.contains(&Effect::Inventory {
        uri: "./DevInfo/Man".into(),
        value: "Moto".into()
    }));
}

#[test]
fn trap24_pkg0_trigger_limits() {
    let n = crate::dm::package0::Notification {
        version: 11,
        ui_mode: crate::dm::package0::UiMode::NotSpecified,
        initiator: crate::dm::package0::Initiator::Server,
        session_id: 1,
        server_id: "x".repeat(256),
        vendor_specific: vec![],
    };
    assert_eq!(
        n.trigger(),
        Err(crate::dm::package0::Package0Error::ServerIdTooLong)
    );
}
