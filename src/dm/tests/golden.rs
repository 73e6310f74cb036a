//! Golden conversations: device messages in `testdata/golden/<case>/NN-device.xml`, the
//! engine's replies in `NN-server.xml` and its effects in `NN-effects.txt`.
//! Regenerate with `UPDATE_GOLDEN=1 cargo test golden`, then review the diff.

use crate::dm::auth::{AuthType, CredentialHash, Nonce, NonceSource, StoredSecret};
use crate::dm::message::{Format, SyncML};
use crate::dm::session::*;
use crate::dm::tree::message_to_tree;
use crate::dm::{Encoding, Limits, decode, encode, xml};

/// Deterministic "randomness": 00 01 02 … so nonces in golden files are predictable.
pub(crate) struct Counter(pub u8);

impl NonceSource for Counter {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.0;
            self.0 = self.0.wrapping_add(1);
        }
    }
}

pub(crate) fn server() -> ServerConfig {
    ServerConfig {
        server_uri: "https://dm.example.net/dm".into(),
        resp_uri_base: None,
        limits: Limits {
            max_message_bytes: 65_536,
            ..Limits::default()
        },
        max_obj_size: 1_048_576,
        default_device_max_msg_size: 16_384,
        max_auth_attempts: 2,
    }
}

pub(crate) fn md5_device() -> DeviceRecord {
    DeviceRecord {
        dev_id: "IMEI:356938035643809".into(),
        client: Some(ClientCredentials {
            auth_type: AuthType::Md5,
            name: "Bruce2".into(),
            secret: StoredSecret::Hash(CredentialHash::compute("Bruce2", "OhBehave")),
            nonce: Some(Nonce(b"Nonce".to_vec())),
        }),
        server: Some(ServerCredentials {
            auth_type: AuthType::Md5,
            name: "dmsrv".into(),
            secret: StoredSecret::Hash(CredentialHash::compute("dmsrv", "srvsecret")),
            nonce: Some(Nonce(b"SrvNonce1".to_vec())),
        }),
        large_object_support: None,
        max_obj_size: None,
    }
}

pub(crate) fn op(id: &str, operation: Operation, group: Option<&str>) -> QueuedOperation {
    QueuedOperation {
        id: id.into(),
        operation,
        sequence_group: group.map(str::to_owned),
    }
}

/// What the HTTP/database edges would do with the effects between two messages.
pub(crate) fn apply(device: &mut DeviceRecord, queue: &mut Vec<QueuedOperation>, fx: &[Effect]) {
    for e in fx {
        match e {
            Effect::StoreClientNonce(n) => {
                if let Some(c) = &mut device.client {
                    c.nonce = Some(n.clone());
                }
            }
            Effect::StoreServerNonce(n) => {
                if let Some(s) = &mut device.server {
                    s.nonce = Some(n.clone());
                }
            }
            Effect::OperationStatus { op_id, .. } => queue.retain(|q| q.id != *op_id),
            Effect::OperationNotDelivered {
                op_id,
                retry_later: false,
                ..
            } => queue.retain(|q| q.id != *op_id),
            _ => {}
        }
    }
}

fn pretty(m: &SyncML) -> String {
    xml::write_tree_pretty(&message_to_tree(m))
}

fn effects_text(fx: &[Effect]) -> String {
    fx.iter().map(|e| format!("{e:?}\n")).collect()
}

fn check(path: &str, actual: &str) {
    let full = format!(
        "{}/src/dm/testdata/golden/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&full, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&full)
        .unwrap_or_else(|e| panic!("{full}: {e} (run with UPDATE_GOLDEN=1 to create it)"));
    assert_eq!(
        actual, expected,
        "golden mismatch in {path}; UPDATE_GOLDEN=1 regenerates"
    );
}

/// Runs a conversation; returns the final state and all effects.
fn run(
    case: &str,
    mut device: DeviceRecord,
    mut queue: Vec<QueuedOperation>,
    steps: usize,
) -> (SessionState, Vec<Effect>) {
    let cfg = server();
    let mut state = SessionState::default();
    let mut rng = Counter(0);
    let mut all = Vec::new();
    for step in 1..=steps {
        let body = super::vectors::testdata(&format!("golden/{case}/{step:02}-device.xml"));
        let (msg, enc) = decode(&body, &cfg.limits).unwrap();
        assert_eq!(enc, Encoding::Xml);
        let input = Inbound {
            message: &msg,
            encoding: enc,
            body: &body,
            hmac_header: None,
            device: &device,
            queue: &queue,
            window: None,
            server: &cfg,
        };
        let (out, fx) = handle(
            state,
            input,
            1_700_000_000_000 + step as i64 * 1000,
            &mut rng,
        );
        // The reply is exactly the encoding of the typed reply, and fits the device's limit.
        assert_eq!(out.body, encode(&out.message, enc));
        let limit = out
            .state
            .device_max_msg_size
            .unwrap_or(cfg.default_device_max_msg_size);
        assert!(
            out.body.len() as u64 <= limit,
            "reply of {} bytes over {limit}",
            out.body.len()
        );
        check(
            &format!("{case}/{step:02}-server.xml"),
            &pretty(&out.message),
        );
        check(&format!("{case}/{step:02}-effects.txt"), &effects_text(&fx));
        apply(&mut device, &mut queue, &fx);
        // Sessions live in the database between messages: round-trip the state through JSON.
        let json = out.state.to_json().unwrap();
        state = SessionState::from_json(&json).unwrap();
        assert_eq!(state, out.state);
        all.extend(fx);
        if step < steps {
            assert!(!out.session_over, "{case}: session ended after step {step}");
        } else {
            assert!(
                out.session_over,
                "{case}: session still open after the last step"
            );
        }
    }
    (state, all)
}

#[test]
fn golden_md5_fumo_pkgurl() {
    let queue = vec![
        op(
            "get-fwv",
            Operation::Get {
                uri: "./DevDetail/FwV".into(),
            },
            None,
        ),
        op(
            "set-url",
            Operation::Replace {
                uri: "./FUMO/fw1/DownloadAndUpdate/PkgURL".into(),
                value: Value::text(Format::Chr, "https://fw.example.net/dd/EX-100/2.4.1.dd"),
            },
            Some("fumo"),
        ),
        op(
            "exec-dlu",
            Operation::Exec {
                uri: "./FUMO/fw1/DownloadAndUpdate".into(),
                data: None,
                correlator: Some("camp42-dev356938035643809-try1".into()),
            },
            Some("fumo"),
        ),
    ];
    let (state, fx) = run("md5_fumo_pkgurl", md5_device(), queue, 2);
    assert!(state.server_authenticated);
    assert!(fx.contains(&Effect::OperationStatus {
        op_id: "exec-dlu".into(),
        status: crate::dm::message::StatusCode::ACCEPTED
    }));
    assert!(fx.contains(&Effect::StoreServerNonce(Nonce(b"SrvNonce2".to_vec()))));
}

#[test]
fn golden_challenge_md5() {
    let mut device = md5_device();
    device.client.as_mut().unwrap().nonce = None;
    let (state, fx) = run("challenge_md5", device, Vec::new(), 2);
    assert!(state.device_authenticated);
    assert_eq!(state.auth_attempts, 1);
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::SessionEnded {
            outcome: SessionOutcome::Completed
        }
    )));
}

#[test]
fn golden_client_generic_alert() {
    let mut device = md5_device();
    device.client = Some(ClientCredentials {
        auth_type: AuthType::Basic,
        name: "Bruce2".into(),
        secret: StoredSecret::Hash(CredentialHash::compute("Bruce2", "OhBehave")),
        nonce: None,
    });
    device.server = None;
    let (_, fx) = run("client_generic_alert", device, Vec::new(), 1);
    let alert = fx
        .iter()
        .find_map(|e| {
            if let Effect::Alert(a) = e {
                Some(a)
            } else {
                None
            }
        })
        .expect("generic alert recorded");
    assert_eq!(
        alert.alert_type.as_deref(),
        Some("org.openmobilealliance.dm.firmwareupdate.downloadandupdate")
    );
    assert_eq!(alert.result_code, Some(410));
    assert_eq!(
        alert.correlator.as_deref(),
        Some("camp42-dev356938035643809-try1")
    );
    assert!(fx.contains(&Effect::Inventory {
        uri: "./DevInfo/Mod".into(),
        value: "EX-100".into()
    }));
}

#[test]
fn golden_large_object_xml() {
    let mut device = md5_device();
    device.client = None;
    device.server = None;
    device.large_object_support = Some(true);
    let payload: Vec<u8> = (0..1500u32).map(|i| (i % 251) as u8).collect();
    let queue = vec![op(
        "pkgdata",
        Operation::Replace {
            uri: "./FUMO/fw1/Update/PkgData".into(),
            value: Value::bytes("application/octet-stream", payload),
        },
        None,
    )];
    let steps = std::fs::read_dir(format!(
        "{}/src/dm/testdata/golden/large_object_xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .filter(|e| {
        e.as_ref()
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with("-device.xml")
    })
    .count();
    let (_, fx) = run("large_object_xml", device, queue, steps);
    assert!(fx.contains(&Effect::OperationStatus {
        op_id: "pkgdata".into(),
        status: crate::dm::message::StatusCode::OK
    }));
}
