//! `/dm` at the HTTP level: what is not SyncML gets a clear 4xx; unknown devices a SyncML refusal.

use reqwest::StatusCode;
use updraft::dm::message::{Command, StatusCode as DmStatus};
use updraft::dm::{Limits, decode};

use crate::helpers::spawn_app;

const PKG1_UNKNOWN: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>
<SessionID>1</SessionID><MsgID>1</MsgID><Target><LocURI>http://server/dm</LocURI></Target>
<Source><LocURI>IMEI:000000000000000</LocURI></Source></SyncHdr>
<SyncBody><Alert><CmdID>1</CmdID><Data>1201</Data></Alert><Final/></SyncBody></SyncML>"#;

#[tokio::test]
async fn garbage_and_wrong_methods_get_4xx_never_5xx() {
    let app = spawn_app().await;
    let post = |body: &'static [u8], ct: &'static str| {
        app.client
            .post(app.url("/dm"))
            .header("content-type", ct)
            .body(body)
            .send()
    };
    for (body, ct, status) in [
        (
            &b"hello"[..],
            "application/vnd.syncml.dm+xml",
            StatusCode::BAD_REQUEST,
        ),
        (
            &b"<html></html>"[..],
            "application/vnd.syncml.dm+xml",
            StatusCode::BAD_REQUEST,
        ),
        (
            &b"\x02\xa4\x01\x6a\x00\xff\xff"[..],
            "application/vnd.syncml.dm+wbxml",
            StatusCode::BAD_REQUEST,
        ),
        (
            &b""[..],
            "application/vnd.syncml.dm+xml",
            StatusCode::BAD_REQUEST,
        ),
        (
            PKG1_UNKNOWN.as_bytes(),
            "text/plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ] {
        let res = post(body, ct).await.unwrap();
        assert_eq!(res.status(), status, "{:?}", String::from_utf8_lossy(body));
        let err: serde_json::Value = res.json().await.unwrap();
        assert!(err["error"]["code"].is_string());
    }
    let get = app.get("/dm").send().await.unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    let huge = vec![b' '; 600 * 1024];
    let res = app
        .client
        .post(app.url("/dm"))
        .header("content-type", "application/vnd.syncml.dm+xml")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn an_unknown_device_gets_a_syncml_401_in_its_own_encoding() {
    let app = spawn_app().await;
    // Whitespace before the declaration, and a Data Sync content type: both tolerated.
    let body = format!("\n  {PKG1_UNKNOWN}");
    let res = app
        .client
        .post(app.url("/dm"))
        .header("content-type", "application/vnd.syncml+xml")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["content-type"],
        "application/vnd.syncml.dm+xml"
    );
    let bytes = res.bytes().await.unwrap();
    let (reply, _) = decode(&bytes, &Limits::default()).unwrap();
    assert_eq!(reply.hdr.session_id, "1");
    assert_eq!(
        reply.body.commands.len(),
        1,
        "no management command for an unknown device"
    );
    let Command::Status(status) = &reply.body.commands[0] else {
        panic!()
    };
    assert_eq!(status.data, DmStatus::INVALID_CREDENTIALS);
}
