//! Whole conversations between simulated devices and the server engine (in memory).

use crate::dm::Encoding;
use crate::dm::auth::{AuthType, CredentialHash};
use crate::dm::message::{Command, Format};
use crate::dm::package0::{Initiator, Notification, UiMode};
use crate::dm::session::{AlertRecord, Effect, Operation, Value};
use crate::simulator::{
    DeviceProfile, Initiation, SessionReport, SimDevice, SimError, run_session,
};

use super::peer::{EnginePeer, SERVER_URL, op, record, server_config};

fn device(dev_id: &str, enc: Encoding, auth: AuthType, server_auth: Option<AuthType>) -> SimDevice {
    let mut p = DeviceProfile::new(dev_id, "devsecret");
    p.encoding = enc;
    p.auth = auth;
    p.server_id = "updraft".into();
    p.server_secret = "srvsecret".into();
    p.server_auth = server_auth;
    SimDevice::new(p)
}

fn get(id: &str, uri: &str) -> crate::dm::session::QueuedOperation {
    op(id, Operation::Get { uri: uri.into() }, None)
}

fn results_for(peer: &EnginePeer, op_id: &str) -> Vec<u8> {
    let effects = peer.effects();
    if let Some(items) = effects.iter().find_map(|e| match e {
        Effect::OperationResults { op_id: o, items } if o == op_id => Some(items),
        _ => None,
    }) {
        return items[0].data.clone();
    }
    // A Large Object result: the staged chunks, in order, decoded as the edge publishes them.
    let b64 = effects
        .iter()
        .find_map(|e| match e {
            Effect::ResultObject { op_id: o, b64, .. } if o == op_id => Some(*b64),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Results for {op_id}"));
    let mut wire = Vec::new();
    for e in &effects {
        if let Effect::ResultChunk {
            op_id: o,
            seq,
            bytes,
        } = e
            && o == op_id
        {
            assert_eq!(*seq as usize, wire.len(), "chunks in order");
            wire.push(bytes.clone());
        }
    }
    let wire = wire.concat();
    if b64 {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(wire)
            .unwrap()
    } else {
        wire
    }
}

fn assert_clean(r: &SessionReport) {
    assert!(r.errors.is_empty(), "server violations: {:#?}", r.errors);
    assert_eq!(r.failure, None);
}

async fn session(dev: &mut SimDevice, peer: &EnginePeer) -> SessionReport {
    let r = run_session(dev, peer, SERVER_URL, Initiation::Client)
        .await
        .unwrap();
    assert_clean(&r);
    r
}

#[tokio::test]
async fn md5_login_with_challenge_then_devdetail_read() {
    for enc in [Encoding::Xml, Encoding::Wbxml] {
        let peer = EnginePeer::new(server_config(65_536));
        let id = "IMEI100";
        peer.add_device(
            record(id, AuthType::Md5, "devsecret", None),
            vec![
                get("fwv", "./DevDetail/FwV"),
                get("lrg", "./DevDetail/LrgObj"),
            ],
        );
        let mut dev = device(id, enc, AuthType::Md5, None);
        assert!(dev.client_nonce.is_none());
        let r = session(&mut dev, &peer).await;
        assert_eq!(
            r.auth_retries, 1,
            "no nonce yet: 407, then md5 with the Chal's nonce"
        );
        assert_eq!(results_for(&peer, "fwv"), b"1.0.0");
        assert_eq!(results_for(&peer, "lrg"), b"true");
        assert!(r.statuses_sent >= 3 && r.commands_received == 2);
        // The 212's Chal nonce is what the server stored for the next session.
        let stored = peer.with(|s| s.devices[id].client.clone().unwrap().nonce);
        assert_eq!(dev.client_nonce, stored);
        peer.queue(id, vec![get("fwv2", "./DevDetail/FwV")]);
        let r = session(&mut dev, &peer).await;
        assert_eq!(r.auth_retries, 0, "stored nonce accepted at once");
        assert_eq!(results_for(&peer, "fwv2"), b"1.0.0");
    }
}

#[tokio::test]
async fn exec_202_then_generic_alert_with_correlator_next_session() {
    let peer = EnginePeer::new(server_config(65_536));
    let id = "IMEI200";
    let text = |s: &str| Value::text(Format::Chr, s);
    peer.add_device(
        record(
            id,
            AuthType::Md5,
            "devsecret",
            Some((AuthType::Md5, "updraft", "srvsecret")),
        ),
        vec![
            op(
                "url",
                Operation::Replace {
                    uri: "./FUMO/fw1/DownloadAndUpdate/PkgURL".into(),
                    value: text("http://fw.test/2.0.0.bin"),
                },
                Some("fw"),
            ),
            op(
                "ver",
                Operation::Replace {
                    uri: "./FUMO/fw1/PkgVersion".into(),
                    value: text("2.0.0"),
                },
                Some("fw"),
            ),
            op(
                "exec",
                Operation::Exec {
                    uri: "./FUMO/fw1/DownloadAndUpdate".into(),
                    data: None,
                    correlator: Some("camp42-try1".into()),
                },
                Some("fw"),
            ),
        ],
    );
    let mut dev = device(id, Encoding::Xml, AuthType::Md5, Some(AuthType::Md5));
    session(&mut dev, &peer).await;
    let statuses: Vec<(String, u16)> = peer
        .effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::OperationStatus { op_id, status } => Some((op_id, status.0)),
            _ => None,
        })
        .collect();
    assert!(statuses.contains(&("exec".into(), 202)), "{statuses:?}");
    assert!(statuses.contains(&("url".into(), 200)));
    assert_eq!(dev.pending_alerts.len(), 1);
    assert_eq!(dev.tree.text("./DevDetail/FwV").as_deref(), Some("2.0.0"));
    // The server stored the nonce our 212 issued: its next Cred must use it.
    let srv_nonce = peer.with(|s| s.devices[id].server.clone().unwrap().nonce);
    assert_eq!(srv_nonce.as_ref(), Some(&dev.server_nonce));

    let r = session(&mut dev, &peer).await;
    assert_eq!(r.generic_alerts_sent, 1);
    let alert = peer.effects().into_iter().find_map(|e| match e {
        Effect::Alert(a) => Some(a),
        _ => None,
    });
    assert_eq!(
        alert,
        Some(AlertRecord {
            code: 1226,
            alert_type: Some("org.openmobilealliance.dm.firmwareupdate.downloadandupdate".into()),
            source: Some("./FUMO/fw1".into()),
            correlator: Some("camp42-try1".into()),
            format: Some("int".into()),
            mark: None,
            data: Some("200".into()),
            result_code: Some(200),
        })
    );
    assert!(
        dev.pending_alerts.is_empty(),
        "200/202 from the server clears the report"
    );
}

fn payload(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn five_mib_large_object_reassembled_within_max_msg_size() {
    for enc in [Encoding::Xml, Encoding::Wbxml] {
        let data = payload(5 * 1024 * 1024);
        let peer = EnginePeer::new(server_config(65_536));
        let id = "IMEI300";
        peer.add_device(
            record(id, AuthType::Md5, "devsecret", None),
            vec![op(
                "pkg",
                Operation::Replace {
                    uri: "./FUMO/fw1/Update/PkgData".into(),
                    value: Value::bytes("application/octet-stream", data.clone()),
                },
                None,
            )],
        );
        let mut dev = device(id, enc, AuthType::Md5, None);
        dev.profile.max_msg_size = 16_384;
        let r = session(&mut dev, &peer).await;
        assert!(r.max_message_seen <= 16_384, "{}", r.max_message_seen);
        assert!(r.messages > 300, "{enc:?}: {} messages", r.messages);
        assert_eq!(r.large_objects_received, 1);
        assert!(dev.tree.value("./FUMO/fw1/Update/PkgData") == Some(&data[..]));
        assert_eq!(dev.tree.text("./FUMO/fw1/State").as_deref(), Some("50"));
        assert!(peer.effects().iter().any(|e| matches!(
            e,
            Effect::OperationStatus { op_id, status } if op_id == "pkg" && status.0 == 200
        )));
    }
}

#[tokio::test]
async fn large_results_are_chunked_to_the_server_max_msg_size() {
    for enc in [Encoding::Xml, Encoding::Wbxml] {
        let data = payload(100_000);
        let peer = EnginePeer::new(server_config(16_384));
        let id = "IMEI310";
        peer.add_device(
            record(id, AuthType::Basic, "devsecret", None),
            vec![get("big", "./FUMO/fw1/Update/PkgData")],
        );
        let mut dev = device(id, enc, AuthType::Basic, None);
        dev.tree
            .replace("./FUMO/fw1/Update/PkgData", "bin", None, data.clone())
            .unwrap();
        let r = session(&mut dev, &peer).await;
        assert!(r.messages > 6, "{enc:?}: {} messages", r.messages);
        let sizes = peer.with(|s| {
            s.log
                .iter()
                .map(|(_, m, _)| crate::dm::encode(m, enc).len())
                .max()
                .unwrap()
        });
        assert!(sizes <= 16_384, "{sizes}");
        assert_eq!(results_for(&peer, "big"), data);
    }
}

#[tokio::test]
async fn wrong_credentials_get_no_management_commands() {
    for auth in [AuthType::Basic, AuthType::Md5, AuthType::Hmac] {
        let peer = EnginePeer::new(server_config(65_536));
        let id = "IMEI400";
        peer.add_device(
            record(id, auth, "right", None),
            vec![get("fwv", "./DevDetail/FwV")],
        );
        let mut dev = device(id, Encoding::Xml, auth, None);
        dev.profile.client_secret = "wrong".into();
        let e = run_session(&mut dev, &*peer, SERVER_URL, Initiation::Client)
            .await
            .unwrap_err();
        assert!(
            matches!(e, SimError::AuthFailed { status: 401, .. }),
            "{auth:?}: {e}"
        );
        assert!(!peer.sent_management_commands());
        assert_eq!(peer.with(|s| s.queues[id].len()), 1, "nothing delivered");
    }
}

#[tokio::test]
async fn every_auth_scheme_in_both_encodings() {
    for enc in [Encoding::Xml, Encoding::Wbxml] {
        for auth in [AuthType::Basic, AuthType::Md5, AuthType::Hmac] {
            let peer = EnginePeer::new(server_config(65_536));
            let id = "IMEI500";
            peer.add_device(
                record(id, auth, "devsecret", Some((auth, "updraft", "srvsecret"))),
                vec![get("man", "./DevInfo/Man"), get("fumo", "./FUMO/fw1")],
            );
            let mut dev = device(id, enc, auth, Some(auth));
            let r = session(&mut dev, &peer).await;
            assert_eq!(results_for(&peer, "man"), b"Updraft", "{enc:?} {auth:?}");
            let children = String::from_utf8(results_for(&peer, "fumo")).unwrap();
            assert!(children.contains("DownloadAndUpdate/Ext"), "{children}");
            assert!(r.messages >= 2);
            // A second session reuses the nonces both sides stored.
            peer.queue(id, vec![get("man2", "./DevInfo/Man")]);
            let r = session(&mut dev, &peer).await;
            assert_eq!(r.auth_retries, 0, "{enc:?} {auth:?}");
            assert_eq!(results_for(&peer, "man2"), b"Updraft");
        }
    }
}

#[tokio::test]
async fn resp_uri_is_followed() {
    let mut cfg = server_config(65_536);
    cfg.resp_uri_base = Some("http://dm.test/dm/r".into());
    let peer = EnginePeer::new(cfg);
    let id = "IMEI600";
    peer.add_device(
        record(id, AuthType::Basic, "devsecret", None),
        vec![get("a", "./DevInfo/Lang")],
    );
    let mut dev = device(id, Encoding::Xml, AuthType::Basic, None);
    session(&mut dev, &peer).await;
    let urls = peer.with(|s| s.urls.clone());
    assert_eq!(urls[0], SERVER_URL);
    assert!(urls.len() >= 2);
    assert!(
        urls[1..]
            .iter()
            .all(|u| u.starts_with("http://dm.test/dm/r?s=")),
        "{urls:?}"
    );
}

#[tokio::test]
async fn package0_starts_a_server_initiated_session() {
    let peer = EnginePeer::new(server_config(65_536));
    let id = "IMEI700";
    peer.add_device(
        record(
            id,
            AuthType::Md5,
            "devsecret",
            Some((AuthType::Md5, "updraft", "srvsecret")),
        ),
        vec![get("mod", "./DevInfo/Mod")],
    );
    let mut dev = device(id, Encoding::Wbxml, AuthType::Md5, Some(AuthType::Md5));
    session(&mut dev, &peer).await;
    let srv_nonce = peer.with(|s| s.devices[id].server.clone().unwrap().nonce);
    assert_eq!(
        srv_nonce.as_ref(),
        Some(&dev.server_nonce),
        "our 212 Chal reached the server"
    );
    // The server builds Package 0 with the SRVCRED nonce the device issued.
    let nonce = peer.with(|s| s.devices[id].server.clone().unwrap().nonce.unwrap());
    let bytes = Notification {
        version: 11,
        ui_mode: UiMode::Background,
        initiator: Initiator::Server,
        session_id: 0x04D2,
        server_id: "updraft".into(),
        vendor_specific: vec![],
    }
    .build(&CredentialHash::compute("updraft", "srvsecret"), &nonce.0)
    .unwrap();
    let sid = dev.accept_notification(&bytes).unwrap();
    assert_eq!(sid, 0x04D2);
    peer.queue(id, vec![get("dmv", "./DevInfo/DmV")]);
    let r = run_session(
        &mut dev,
        &*peer,
        SERVER_URL,
        Initiation::Server { session_id: sid },
    )
    .await
    .unwrap();
    assert_clean(&r);
    assert_eq!(r.session_id, "4D2");
    let first = peer.with(|s| {
        s.log
            .iter()
            .find(|(_, m, _)| m.hdr.session_id == "4D2")
            .map(|(_, m, _)| m.clone())
    });
    let first = first.unwrap();
    assert!(matches!(&first.body.commands[0], Command::Alert(a) if a.data.0 == 1200));
    assert_eq!(results_for(&peer, "dmv"), b"1.2");
}

/// Engine bug kept visible: a basic name containing ':' (a DevId like `IMEI:…`, brief 2.3) is
/// split at the first ':' by `dm::auth::parse_basic_credential`, so the right secret is
/// refused. Flip this test when the engine compares against `name ":"` instead.
#[tokio::test]
async fn basic_names_with_a_colon_authenticate() {
    let peer = EnginePeer::new(server_config(65_536));
    let id = "IMEI:356938035643809";
    peer.add_device(record(id, AuthType::Basic, "devsecret", None), vec![]);
    let mut dev = device(id, Encoding::Xml, AuthType::Basic, None);
    let mut s = crate::simulator::ClientSession::new(
        &mut dev,
        SERVER_URL,
        Initiation::Client,
        crate::simulator::SessionOptions::default(),
    );
    s.run(&*peer)
        .await
        .expect("a DevId with ':' as the basic name authenticates");
    assert!(s.report().errors.is_empty(), "{:?}", s.report().errors);
}

/// Brief 1.6 from the device's side: a device with a small MaxMsgSize sends more Generic
/// Alerts than the server can answer in one message. Each server message must fit, the
/// statuses come in several messages without Final (the device asks with Alert 1222), each
/// alert is answered exactly once, and the server's Get only follows the last status.
#[tokio::test]
async fn statuses_beyond_one_message_are_split_across_the_server_package() {
    for enc in [Encoding::Xml, Encoding::Wbxml] {
        let peer = EnginePeer::new(server_config(16_384));
        let id = "IMEI700";
        peer.add_device(
            record(id, AuthType::Md5, "devsecret", None),
            vec![get("fw", "./DevDetail/FwV")],
        );
        let mut dev = device(id, enc, AuthType::Md5, None);
        dev.profile.max_msg_size = 1500;
        for i in 0..150 {
            dev.pending_alerts.push(crate::simulator::PendingAlert {
                correlator: Some(format!("job-{i}")),
                source: "./FUMO/fw1".into(),
                alert_type: crate::simulator::fumo_alert_type("Update"),
                result_code: 200,
            });
        }
        let r = session(&mut dev, &peer).await;
        assert!(r.max_message_seen <= 1500, "{}", r.max_message_seen);
        // Counted by the device, resends after the md5 challenge included.
        assert!(r.generic_alerts_sent >= 150);
        assert!(dev.pending_alerts.is_empty(), "every alert answered");
        let alerts = peer
            .effects()
            .into_iter()
            .filter(|e| matches!(e, Effect::Alert(_)))
            .count();
        assert_eq!(alerts, 150);
        assert_eq!(results_for(&peer, "fw"), b"1.0.0");
        // Several server messages carried statuses only, without Final.
        let partial = peer.with(|s| {
            s.log
                .iter()
                .filter(|(_, _, reply)| {
                    !reply.body.final_
                        && reply
                            .body
                            .commands
                            .iter()
                            .all(|c| matches!(c, Command::Status(_)))
                })
                .count()
        });
        assert!(partial >= 2, "{partial}");
    }
}
