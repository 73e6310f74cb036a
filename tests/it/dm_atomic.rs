//! One atomic step per DM message: the same message at two replicas on one database stores
//! one set of effects and gets one answer; a live session refuses messages without its
//! RespURI token; an answered MsgID is never executed twice.

use reqwest::Method;
use serde_json::{Value, json};
use updraft::config::Config;
use updraft::dm::auth::{CredentialHash, Nonce, md5_credential};
use updraft::dm::message::{
    Alert, AlertCode, Command, Cred, Data, Format, Item, ItemCommand, Meta, Source, Status,
    StatusCode, SyncBody, SyncHdr, SyncML, Target,
};
use updraft::dm::{Encoding, Limits, decode, encode};

use crate::helpers::{TestApp, fresh_database, spawn_app, spawn_app_with};

const SECRET: &str = "race-secret";

async fn provision(app: &TestApp, dev_id: &str) -> String {
    let created: Value = app
        .admin(Method::POST, "/api/v1/devices")
        .json(&json!({
            "dev_id": dev_id,
            "client": {"type": "md5", "name": dev_id, "secret": SECRET},
            "server": {"type": "md5", "name": "updraft", "secret": "server-secret"},
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["id"].as_str().unwrap().to_owned()
}

/// A device message: Alert 1201, DevInfo, a Generic Alert with `correlator`, and Cred over
/// `nonce` when given.
fn message(
    dev_id: &str,
    session: &str,
    msg_id: u32,
    nonce: Option<&Nonce>,
    correlator: &str,
) -> Vec<u8> {
    package(dev_id, session, msg_id, nonce, correlator, true)
}

/// [`message`], with `final_` false for a message whose package continues.
fn package(
    dev_id: &str,
    session: &str,
    msg_id: u32,
    nonce: Option<&Nonce>,
    correlator: &str,
    final_: bool,
) -> Vec<u8> {
    let cred = nonce.map(|n| Cred {
        meta: Some(Meta {
            format: Some(Format::B64),
            type_: Some("syncml:auth-md5".into()),
            ..Meta::default()
        }),
        data: md5_credential(&CredentialHash::compute(dev_id, SECRET), &n.0),
    });
    let msg = SyncML {
        hdr: SyncHdr {
            ver_dtd: "1.2".into(),
            ver_proto: "DM/1.2".into(),
            session_id: session.into(),
            msg_id: msg_id.into(),
            target: Target::uri("http://updraft.test/dm"),
            source: Source {
                loc_uri: dev_id.into(),
                loc_name: Some(dev_id.into()),
            },
            cred,
            ..SyncHdr::default()
        },
        body: SyncBody {
            commands: vec![
                Command::Alert(Alert {
                    cmd_id: 1.into(),
                    no_resp: false,
                    cred: None,
                    data: AlertCode::CLIENT_INITIATED_MGMT,
                    correlator: None,
                    items: Vec::new(),
                }),
                Command::Replace(ItemCommand {
                    cmd_id: 2.into(),
                    items: vec![Item {
                        source: Some(Source::uri("./DevInfo/Mod")),
                        data: Some(Data::Text("RaceModel".into())),
                        ..Item::default()
                    }],
                    ..ItemCommand::default()
                }),
                Command::Alert(Alert {
                    cmd_id: 3.into(),
                    data: AlertCode::GENERIC_ALERT,
                    correlator: Some(correlator.into()),
                    items: vec![Item {
                        source: Some(Source::uri("./FUMO/fw1/DownloadAndUpdate")),
                        meta: Some(Meta {
                            format: Some(Format::Chr),
                            type_: Some(
                                "org.openmobilealliance.dm.firmwareupdate.devicerequest".into(),
                            ),
                            ..Meta::default()
                        }),
                        data: Some(Data::Text("200".into())),
                        ..Item::default()
                    }],
                    no_resp: false,
                    cred: None,
                }),
            ],
            final_,
        },
    };
    encode(&msg, Encoding::Xml)
}

async fn post(app: &TestApp, path_and_query: &str, body: Vec<u8>) -> Vec<u8> {
    let res = app
        .client
        .post(app.url(path_and_query))
        .header("content-type", "application/vnd.syncml.dm+xml")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the DM endpoint answers 200");
    res.bytes().await.unwrap().to_vec()
}

fn header_status(reply: &[u8]) -> Status {
    let (msg, _) = decode(reply, &Limits::default()).expect("the reply is SyncML");
    msg.body
        .commands
        .into_iter()
        .find_map(|c| match c {
            Command::Status(s) if s.cmd == "SyncHdr" => Some(s),
            _ => None,
        })
        .expect("a SyncHdr status")
}

/// The RespURI of a reply as path and query (`/dm?s=…`).
fn resp_path(reply: &[u8]) -> String {
    let (msg, _) = decode(reply, &Limits::default()).unwrap();
    let uri = msg.hdr.resp_uri.expect("the server issues a RespURI");
    let path = uri.split_once("/dm").expect("RespURI ends in /dm?s=").1;
    format!("/dm{path}")
}

fn next_nonce(status: &Status) -> Nonce {
    Nonce::from_b64(
        status
            .chal
            .as_ref()
            .and_then(|c| c.meta.next_nonce.as_deref())
            .expect("a NextNonce"),
    )
    .expect("a base64 NextNonce")
}

#[tokio::test]
async fn the_same_message_at_two_replicas_is_stored_once_and_answered_alike() {
    let db = fresh_database().await;
    // Replicas behind one load balancer share their public URL (it is in every reply).
    let share = |c: &mut Config| {
        c.database_url = Some(db.url.clone().into());
        c.dm.public_url = Some("http://updraft.test".into());
    };
    let a = spawn_app_with(share).await;
    let b = spawn_app_with(share).await;
    let dev_id = "IMEI:990000000000001";
    let id = provision(&a, dev_id).await;
    let store = updraft::store::Store::connect_url(&db.url).await.unwrap();
    let rounds = 25;
    for round in 1..=rounds {
        let session = round.to_string();
        // Message 1 without credentials: a challenge, one new nonce.
        let first = message(dev_id, &session, 1, None, &format!("c-{round}"));
        let (ra, rb) = tokio::join!(post(&a, "/dm", first.clone()), post(&b, "/dm", first));
        assert_eq!(
            String::from_utf8_lossy(&ra),
            String::from_utf8_lossy(&rb),
            "round {round}: both replicas answer message 1 alike"
        );
        let challenge = header_status(&ra);
        assert_eq!(challenge.data, StatusCode::MISSING_CREDENTIALS);
        let nonce = next_nonce(&challenge);
        let secrets = store.devices().secrets(&id).await.unwrap().unwrap();
        assert_eq!(
            secrets.client_nonce.as_deref(),
            Some(nonce.to_b64().as_str()),
            "round {round}: the stored nonce is the one both answers carry"
        );

        // Message 2 with credentials over it, at both replicas through the RespURI.
        let path = resp_path(&ra);
        let second = message(dev_id, &session, 2, Some(&nonce), &format!("c-{round}"));
        let (ra, rb) = tokio::join!(post(&a, &path, second.clone()), post(&b, &path, second));
        assert_eq!(
            String::from_utf8_lossy(&ra),
            String::from_utf8_lossy(&rb),
            "round {round}: both replicas answer message 2 alike"
        );
        let accepted = header_status(&ra);
        assert_eq!(accepted.data, StatusCode::AUTHENTICATION_ACCEPTED);
        let secrets = store.devices().secrets(&id).await.unwrap().unwrap();
        assert_eq!(
            secrets.client_nonce.as_deref(),
            Some(next_nonce(&accepted).to_b64().as_str()),
            "round {round}: one nonce stored for the accepted message"
        );

        let alerts: Value = a
            .admin(
                Method::GET,
                &format!("/api/v1/devices/{id}/alerts?correlator=c-{round}"),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let alerts = alerts.as_array().expect("an alert list");
        assert_eq!(
            alerts.len(),
            1,
            "round {round}: the Generic Alert is recorded once"
        );
        let sessions: Value = a
            .admin(Method::GET, &format!("/api/v1/devices/{id}/sessions"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let sessions = sessions.as_array().expect("a session list");
        let ours: Vec<&Value> = sessions
            .iter()
            .filter(|s| s["session_id"] == session.as_str())
            .collect();
        assert_eq!(ours.len(), 1, "round {round}: one session row");
        assert_eq!(
            ours[0]["messages"], 2,
            "round {round}: two messages counted"
        );
    }
}

#[tokio::test]
async fn a_later_message_without_the_resp_uri_token_is_refused_and_executes_nothing() {
    let app = spawn_app().await;
    let dev_id = "IMEI:990000000000002";
    let id = provision(&app, dev_id).await;
    let first = post(&app, "/dm", message(dev_id, "7", 1, None, "x")).await;
    let nonce = next_nonce(&header_status(&first));
    let path = resp_path(&first);

    for (what, target) in [
        ("no token", "/dm".to_owned()),
        ("a wrong token", "/dm?s=00ff".to_owned()),
    ] {
        let reply = post(
            &app,
            &target,
            message(dev_id, "7", 2, Some(&nonce), "hijack"),
        )
        .await;
        assert_eq!(
            header_status(&reply).data,
            StatusCode::FORBIDDEN,
            "{what}: refused on the SyncHdr"
        );
    }
    let alerts: Value = app
        .admin(
            Method::GET,
            &format!("/api/v1/devices/{id}/alerts?correlator=hijack"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(alerts.as_array().unwrap().len(), 0, "nothing was executed");

    // The device itself, with the token, carries on (a queued Get keeps the session open).
    let queued = app
        .admin(Method::POST, &format!("/api/v1/devices/{id}/operations"))
        .json(&json!({"kind": "get", "uri": "./DevDetail/FwV"}))
        .send()
        .await
        .unwrap();
    assert_eq!(queued.status(), 201);
    let reply = post(&app, &path, message(dev_id, "7", 2, Some(&nonce), "mine")).await;
    assert_eq!(
        header_status(&reply).data,
        StatusCode::AUTHENTICATION_ACCEPTED
    );
    let path = resp_path(&reply);
    // Its package goes on (no Final), so the session stays open.
    post(&app, &path, package(dev_id, "7", 3, None, "three", false)).await;
    // MsgID 2 again with other bytes: older than the last answered, refused unexecuted.
    let stale = post(&app, &path, message(dev_id, "7", 2, None, "stale")).await;
    assert_eq!(header_status(&stale).data, StatusCode::BAD_REQUEST);
    let alerts: Value = app
        .admin(Method::GET, &format!("/api/v1/devices/{id}/alerts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut correlators: Vec<&str> = alerts
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["correlator"].as_str())
        .collect();
    correlators.sort();
    assert_eq!(
        correlators,
        vec!["mine", "three"],
        "only the device's own messages were executed"
    );
}

#[tokio::test]
async fn a_device_provisioned_as_ignoring_resp_uri_continues_without_the_token() {
    let app = spawn_app().await;
    let dev_id = "IMEI:990000000000003";
    let created: Value = app
        .admin(Method::POST, "/api/v1/devices")
        .json(&json!({
            "dev_id": dev_id,
            "client": {"type": "md5", "name": dev_id, "secret": SECRET},
            "server": {"type": "md5", "name": "updraft", "secret": "server-secret"},
            "ignores_resp_uri": true,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["ignores_resp_uri"], true);
    let first = post(&app, "/dm", message(dev_id, "9", 1, None, "x")).await;
    let nonce = next_nonce(&header_status(&first));
    let reply = post(&app, "/dm", message(dev_id, "9", 2, Some(&nonce), "y")).await;
    assert_eq!(
        header_status(&reply).data,
        StatusCode::AUTHENTICATION_ACCEPTED
    );
}
