//! Over real sockets: sessions through `HttpTransport`, `run` with several devices, and
//! Package 0 pushed by UDP and HTTP.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Mutex, mpsc};

use crate::dm::Encoding;
use crate::dm::auth::{AuthType, CredentialHash, Nonce};
use crate::dm::package0::{Initiator, Notification, UiMode};
use crate::dm::session::Operation;
use crate::simulator::{
    DeviceProfile, HttpTransport, Initiation, PushTarget, SessionOptions, SimDevice, SimulateArgs,
    derive_secret, run_session, run_with, serve_http_push, serve_udp_push,
};

use super::peer::{EnginePeer, op, record, serve_http, server_config};

#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    args: SimulateArgs,
}

#[tokio::test]
async fn session_over_http_with_hmac_and_wbxml() {
    let peer = EnginePeer::new(server_config(65_536));
    let id = "IMEI1000";
    peer.add_device(
        record(
            id,
            AuthType::Hmac,
            "s",
            Some((AuthType::Hmac, "updraft", "srv")),
        ),
        vec![op(
            "fw",
            Operation::Get {
                uri: "./DevDetail/FwV".into(),
            },
            None,
        )],
    );
    let url = serve_http(peer.clone()).await;
    let mut p = DeviceProfile::new(id, "s");
    p.encoding = Encoding::Wbxml;
    p.auth = AuthType::Hmac;
    p.server_secret = "srv".into();
    p.server_auth = Some(AuthType::Hmac);
    let mut dev = SimDevice::new(p);
    let http = HttpTransport::new(Duration::from_secs(10)).unwrap();
    let r = run_session(&mut dev, &http, &url, Initiation::Client)
        .await
        .unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.auth_retries, 1);
    assert!(peer.with(|s| s.queues[id].is_empty()));
}

#[tokio::test]
async fn run_drives_many_devices_over_http() {
    let peer = EnginePeer::new(server_config(65_536));
    peer.with(|s| {
        s.provision = Some(Box::new(|dev_id: &str| {
            record(dev_id, AuthType::Md5, &derive_secret("base", dev_id), None)
        }));
    });
    let url = serve_http(peer.clone()).await;
    let cli = Cli::try_parse_from([
        "sim",
        "--server",
        &url,
        "--devices",
        "3",
        "--concurrency",
        "2",
        "--sessions",
        "2",
        "--secret",
        "base",
        "--per-device-secrets",
        "--dev-id-prefix",
        "SIM:",
        "--encoding",
        "wbxml",
    ])
    .unwrap();
    let transport = Arc::new(HttpTransport::new(Duration::from_secs(10)).unwrap());
    let summary = run_with(&cli.args, transport).await.unwrap();
    assert!(summary.ok(), "{}", summary.render_table());
    assert_eq!(summary.sessions, 6);
    let ids: Vec<&str> = summary.devices.iter().map(|d| d.dev_id.as_str()).collect();
    assert_eq!(ids, ["SIM:1", "SIM:2", "SIM:3"]);
    // First session: 407 then md5; second: the stored nonce.
    assert!(summary.devices.iter().all(|d| d.auth_retries == 1));
    let json = serde_json::to_string(&summary).unwrap();
    assert!(json.contains("\"failed_sessions\":0"));
}

#[tokio::test]
async fn run_with_the_refuse_first_quirk_gets_every_operation_through() {
    let peer = EnginePeer::new(server_config(65_536));
    for n in 1..=2 {
        let id = format!("LIB:{n}");
        let get = |op_id: &str, uri: &str| op(op_id, Operation::Get { uri: uri.into() }, None);
        peer.add_device(
            record(
                &id,
                AuthType::Basic,
                "base",
                Some((AuthType::Md5, "updraft", "srv")),
            ),
            vec![
                get("fwv", "./DevDetail/FwV"),
                get("lrg", "./DevDetail/LrgObj"),
            ],
        );
    }
    let url = serve_http(peer.clone()).await;
    let cli = Cli::try_parse_from([
        "sim",
        "--server",
        &url,
        "--devices",
        "2",
        "--sessions",
        "2",
        "--dev-id-prefix",
        "LIB:",
        "--auth",
        "basic",
        "--secret",
        "base",
        "--server-secret",
        "srv",
        "--server-auth",
        "md5",
        "--server-auth-quirk",
        "refuse-first",
    ])
    .unwrap();
    let transport = Arc::new(HttpTransport::new(Duration::from_secs(10)).unwrap());
    let summary = run_with(&cli.args, transport).await.unwrap();
    assert!(summary.ok(), "{}", summary.render_table());
    // Every session refuses the server's first credentials once: the first one with
    // commands (resent and executed), the second one with an empty queue (the device ends
    // it, as this client does).
    assert!(
        summary.devices.iter().all(|d| d.server_auth_refusals == 2),
        "{summary:?}"
    );
    assert!(peer.with(|s| s.queues.values().all(Vec::is_empty)));
}

fn package0(session_id: u16, secret: &str, nonce: &[u8]) -> Vec<u8> {
    Notification {
        version: 11,
        ui_mode: UiMode::Background,
        initiator: Initiator::Server,
        session_id,
        server_id: "updraft".into(),
        vendor_specific: vec![],
    }
    .build(&CredentialHash::compute("updraft", secret), nonce)
    .unwrap()
}

fn push_target(
    peer: Arc<EnginePeer>,
    ids: &[&str],
) -> (
    Arc<PushTarget<EnginePeer>>,
    mpsc::UnboundedReceiver<crate::simulator::PushEvent>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let devices = ids
        .iter()
        .map(|id| {
            peer.add_device(record(id, AuthType::Basic, "s", None), vec![]);
            let mut p = DeviceProfile::new(*id, "s");
            p.auth = AuthType::Basic;
            p.server_secret = format!("srv-{id}");
            Arc::new(Mutex::new(SimDevice::new(p)))
        })
        .collect();
    let target = Arc::new(PushTarget {
        devices,
        transport: peer,
        server_url: super::peer::SERVER_URL.into(),
        options: SessionOptions::default(),
        events: tx,
    });
    (target, rx)
}

#[tokio::test]
async fn udp_push_wakes_only_the_device_whose_digest_verifies() {
    let peer = EnginePeer::new(server_config(65_536));
    let (target, mut rx) = push_target(peer.clone(), &["IMEI1", "IMEI2"]);
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let listener = tokio::spawn(serve_udp_push(socket, target));
    let sender = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // Per-device server secrets: only IMEI:2 verifies; initial nonce = 4 zero bytes.
    let bytes = package0(0xBEEF, "srv-IMEI2", &Nonce(vec![0; 4]).0);
    sender.send_to(&bytes, addr).await.unwrap();
    let mut events = Vec::new();
    while events.len() < 2 {
        let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        events.push(ev);
    }
    listener.abort();
    events.sort_by(|a, b| a.dev_id.cmp(&b.dev_id));
    assert!(events[0].notification.is_err(), "IMEI:1 has another secret");
    assert_eq!(events[1].notification, Ok(0xBEEF));
    let report = events[1].report.clone().unwrap();
    assert_eq!(report.session_id, "BEEF");
    assert!(
        report.errors.is_empty() && report.failure.is_none(),
        "{report:?}"
    );
    assert!(peer.with(|s| {
        s.log
            .iter()
            .any(|(d, m, _)| d == "IMEI2" && m.hdr.session_id == "BEEF")
    }));
}

async fn http_post(addr: std::net::SocketAddr, path: &str, body: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.syncml.notification\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn http_push_by_device_path() {
    let peer = EnginePeer::new(server_config(65_536));
    let (target, mut rx) = push_target(peer.clone(), &["IMEI1", "IMEI2"]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_http_push(listener, target));
    let good = package0(7, "srv-IMEI1", &[0; 4]);
    assert!(
        http_post(addr, "/push/IMEI9", &good)
            .await
            .starts_with("HTTP/1.1 404")
    );
    assert!(
        http_post(addr, "/push/IMEI2", &good)
            .await
            .starts_with("HTTP/1.1 403")
    );
    assert!(
        http_post(addr, "/push/IMEI1", &good)
            .await
            .starts_with("HTTP/1.1 202")
    );
    let mut accepted = None;
    while accepted.is_none() {
        let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        if ev.notification.is_ok() {
            accepted = Some(ev);
        }
    }
    server.abort();
    let ev = accepted.unwrap();
    assert_eq!(ev.dev_id, "IMEI1");
    assert_eq!(ev.report.unwrap().session_id, "7");
}

#[tokio::test]
async fn a_device_switched_off_loses_package_0_and_takes_the_next_one() {
    let peer = EnginePeer::new(server_config(65_536));
    let (target, mut rx) = push_target(peer.clone(), &["IMEI3"]);
    let bytes = package0(0x0A0A, "srv-IMEI3", &Nonce(vec![0; 4]).0);
    target.devices[0].lock().await.offline = true;
    assert_eq!(target.deliver(&bytes, None).await, 0, "nobody heard it");
    assert!(rx.try_recv().is_err(), "no event, no session");
    assert_eq!(target.deliver(&bytes, Some("IMEI3")).await, 0);
    target.devices[0].lock().await.offline = false;
    assert_eq!(target.deliver(&bytes, None).await, 1);
    let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.notification, Ok(0x0A0A));
}
