//! Authentication flows across messages: resynchronisation nonces never authenticate by
//! themselves (brief 2.5), and commands the device refused because it did not accept our
//! credentials go out again in the same session (the libdmclient test client's flow).

use super::golden::{Counter, apply, md5_device, op, server};
use crate::dm::auth::*;
use crate::dm::message::*;
use crate::dm::session::*;
use crate::dm::{Encoding, decode, encode};

const DEV: &str = "IMEI:356938035643809";
const PKG1: &str = r#"<Alert><CmdID>1</CmdID><Data>1201</Data></Alert><Replace><CmdID>2</CmdID><Item><Source><LocURI>./DevInfo/DevId</LocURI></Source><Data>IMEI:356938035643809</Data></Item></Replace>"#;

fn msg(msg_id: u32, hdr_extra: &str, body: &str) -> Vec<u8> {
    format!(
        r#"<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>9</SessionID><MsgID>{msg_id}</MsgID><Target><LocURI>S</LocURI></Target><Source><LocURI>{DEV}</LocURI><LocName>Bruce2</LocName></Source>{hdr_extra}</SyncHdr><SyncBody>{body}<Final/></SyncBody></SyncML>"#
    )
    .into_bytes()
}

fn md5_cred(nonce: &[u8]) -> String {
    let data = md5_credential(&CredentialHash::compute("Bruce2", "OhBehave"), nonce);
    format!(
        r#"<Cred><Meta><Type xmlns="syncml:metinf">syncml:auth-md5</Type><Format xmlns="syncml:metinf">b64</Format></Meta><Data>{data}</Data></Cred>"#
    )
}

fn step(
    st: SessionState,
    body: &[u8],
    dev: &DeviceRecord,
    queue: &[QueuedOperation],
    hmac: Option<&str>,
    rng: &mut Counter,
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
            queue,
            server: &cfg,
            window: None,
        },
        0,
        rng,
    )
}

fn header_status(o: &Outbound) -> &Status {
    match &o.message.body.commands[0] {
        Command::Status(s) => s,
        c => panic!("first command is {c:?}"),
    }
}

fn chal_nonce(o: &Outbound) -> Nonce {
    let n = header_status(o).chal.as_ref().expect("a Chal");
    Nonce::from_b64(n.meta.next_nonce.as_deref().expect("a NextNonce")).unwrap()
}

fn management(o: &Outbound) -> Vec<&Command> {
    o.message
        .body
        .commands
        .iter()
        .filter(|c| !matches!(c, Command::Status(_)))
        .collect()
}

fn get(id: &str, uri: &str) -> QueuedOperation {
    op(id, Operation::Get { uri: uri.into() }, None)
}

#[test]
fn md5_over_a_resync_nonce_is_challenged_and_only_the_fresh_nonce_authenticates() {
    let mut dev = md5_device();
    // The device lost the nonce we issued and falls back to a default (brief 2.5).
    dev.client.as_mut().unwrap().nonce = Some(Nonce(b"lost".to_vec()));
    let queue = [get("fwv", "./DevDetail/FwV")];
    for fallback in Nonce::resync_defaults() {
        let mut rng = Counter(0);
        let pkg1 = msg(1, &md5_cred(&fallback.0), PKG1);
        let (o, fx) = step(SessionState::default(), &pkg1, &dev, &queue, None, &mut rng);
        assert_eq!(header_status(&o).data, StatusCode::INVALID_CREDENTIALS);
        assert!(
            management(&o).is_empty(),
            "no command before authentication"
        );
        assert!(!o.session_over);
        let fresh = chal_nonce(&o);
        assert!(!fresh.is_resync_default() && fresh.0 != b"lost");
        assert!(fx.contains(&Effect::DeviceResyncChallenged { attempts: 1 }));
        assert!(fx.contains(&Effect::StoreClientNonce(fresh.clone())));
        assert!(
            !fx.iter()
                .any(|e| matches!(e, Effect::DeviceAuthenticated { .. }))
        );

        // The same credential again in that session: still a challenge, never accepted.
        let again = msg(2, &md5_cred(&fallback.0), PKG1);
        let (o2, _) = step(o.state.clone(), &again, &dev, &queue, None, &mut rng);
        assert_eq!(header_status(&o2).data, StatusCode::INVALID_CREDENTIALS);
        assert!(management(&o2).is_empty());

        // Over the fresh nonce: 212 and the queued Get.
        let retry = msg(2, &md5_cred(&fresh.0), PKG1);
        let (o3, fx3) = step(o.state, &retry, &dev, &queue, None, &mut rng);
        assert_eq!(header_status(&o3).data, StatusCode::AUTHENTICATION_ACCEPTED);
        assert_eq!(management(&o3).len(), 1);
        assert!(fx3.contains(&Effect::DeviceAuthenticated {
            auth_type: Some(AuthType::Md5)
        }));
    }
}

#[test]
fn a_captured_package1_over_a_resync_nonce_replayed_later_gets_a_challenge_only() {
    let mut dev = md5_device();
    dev.client.as_mut().unwrap().nonce = None;
    let mut queue = vec![get("fwv", "./DevDetail/FwV")];
    let mut rng = Counter(0);
    let captured = msg(1, &md5_cred(&[0; 4]), PKG1);
    // The honest session: challenged, then authenticated over the fresh nonce; it ends.
    let (o, fx) = step(
        SessionState::default(),
        &captured,
        &dev,
        &queue,
        None,
        &mut rng,
    );
    apply(&mut dev, &mut queue, &fx);
    let fresh = chal_nonce(&o);
    let (o, fx) = step(
        o.state,
        &msg(2, &md5_cred(&fresh.0), PKG1),
        &dev,
        &queue,
        None,
        &mut rng,
    );
    apply(&mut dev, &mut queue, &fx);
    assert_eq!(management(&o).len(), 1);
    let get_id = management(&o)[0].cmd_id().clone();
    let status = format!(
        r#"<Status><CmdID>1</CmdID><MsgRef>2</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd><Data>200</Data></Status><Status><CmdID>2</CmdID><MsgRef>2</MsgRef><CmdRef>{get_id}</CmdRef><Cmd>Get</Cmd><Data>200</Data></Status>"#
    );
    let (o, fx) = step(o.state, &msg(3, "", &status), &dev, &queue, None, &mut rng);
    apply(&mut dev, &mut queue, &fx);
    assert!(o.session_over);

    // Later, with new work queued, an attacker replays the captured bytes.
    queue.push(get("swv", "./DevDetail/SwV"));
    let (replay, fx) = step(
        SessionState::default(),
        &captured,
        &dev,
        &queue,
        None,
        &mut rng,
    );
    assert_eq!(header_status(&replay).data, StatusCode::INVALID_CREDENTIALS);
    assert!(
        header_status(&replay).chal.is_some(),
        "the reply is a challenge"
    );
    assert!(management(&replay).is_empty(), "no management command");
    assert!(
        !fx.iter()
            .any(|e| matches!(e, Effect::DeviceAuthenticated { .. }))
    );
    assert_eq!(queue.len(), 1, "the queued operation stays queued");
}

#[test]
fn a_provisioned_empty_nonce_authenticates_at_once() {
    let mut dev = md5_device();
    dev.client.as_mut().unwrap().nonce = Some(Nonce(Vec::new()));
    let (o, _) = step(
        SessionState::default(),
        &msg(1, &md5_cred(b""), PKG1),
        &dev,
        &[],
        None,
        &mut Counter(0),
    );
    assert_eq!(header_status(&o).data, StatusCode::AUTHENTICATION_ACCEPTED);
}

#[test]
fn hmac_over_a_resync_nonce_is_challenged_too() {
    let mut dev = md5_device();
    dev.client.as_mut().unwrap().auth_type = AuthType::Hmac;
    dev.client.as_mut().unwrap().nonce = None;
    let hash = CredentialHash::compute("Bruce2", "OhBehave");
    let header = |nonce: &[u8], body: &[u8]| {
        HmacHeader {
            algorithm: None,
            username: "Bruce2".into(),
            mac: hmac_mac(&hash, nonce, body),
        }
        .format()
    };
    let mut rng = Counter(0);
    let b1 = msg(1, "", PKG1);
    let (o, fx) = step(
        SessionState::default(),
        &b1,
        &dev,
        &[get("fwv", "./DevDetail/FwV")],
        Some(&header(&[0; 4], &b1)),
        &mut rng,
    );
    assert_eq!(header_status(&o).data, StatusCode::INVALID_CREDENTIALS);
    assert!(management(&o).is_empty());
    assert!(fx.contains(&Effect::DeviceResyncChallenged { attempts: 1 }));
    let fresh = chal_nonce(&o);
    let b2 = msg(2, "", PKG1);
    let (o, _) = step(
        o.state,
        &b2,
        &dev,
        &[get("fwv", "./DevDetail/FwV")],
        Some(&header(&fresh.0, &b2)),
        &mut rng,
    );
    assert_eq!(header_status(&o).data, StatusCode::OK);
    assert_eq!(management(&o).len(), 1);
}

/// A device (CLCRED none, so its messages are accepted as they come) whose SRVCRED nonce the
/// server does not know: our first credentials are over 4 zero bytes.
fn device_with_unknown_server_nonce() -> DeviceRecord {
    let mut dev = md5_device();
    dev.client = None;
    dev.server.as_mut().unwrap().nonce = None;
    dev
}

fn server_hash() -> CredentialHash {
    CredentialHash::compute("dmsrv", "srvsecret")
}

/// The libdmclient answer to credentials it cannot verify: 401 + Chal on our SyncHdr, 401 on
/// each of `cmds` (CmdID, Cmd) of our message `msg_ref`.
fn refusal(msg_id: u32, msg_ref: u32, device_nonce: &Nonce, cmds: &[(String, String)]) -> Vec<u8> {
    let mut body = format!(
        r#"<Status><CmdID>1</CmdID><MsgRef>{msg_ref}</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd><Chal><Meta><Type xmlns="syncml:metinf">syncml:auth-md5</Type><Format xmlns="syncml:metinf">b64</Format><NextNonce xmlns="syncml:metinf">{}</NextNonce></Meta></Chal><Data>401</Data></Status>"#,
        device_nonce.to_b64()
    );
    for (i, (cmd_id, cmd)) in cmds.iter().enumerate() {
        body.push_str(&format!(
            r#"<Status><CmdID>{}</CmdID><MsgRef>{msg_ref}</MsgRef><CmdRef>{cmd_id}</CmdRef><Cmd>{cmd}</Cmd><Data>401</Data></Status>"#,
            i + 2
        ));
    }
    msg(msg_id, "", &body)
}

fn top_level(o: &Outbound) -> Vec<(String, String)> {
    management(o)
        .iter()
        .map(|c| (c.cmd_id().0.clone(), c.name().to_owned()))
        .collect()
}

fn fumo_queue() -> Vec<QueuedOperation> {
    vec![
        get("fwv", "./DevDetail/FwV"),
        op(
            "exec",
            Operation::Exec {
                uri: "./FUMO/fw1/DownloadAndUpdate".into(),
                data: None,
                correlator: Some("job-1".into()),
            },
            None,
        ),
    ]
}

#[test]
fn commands_refused_for_our_credentials_go_out_again_with_credentials_over_the_new_nonce() {
    for encoding in [Encoding::Xml, Encoding::Wbxml] {
        let mut dev = device_with_unknown_server_nonce();
        let mut queue = fumo_queue();
        let mut rng = Counter(0);
        let wire = |xml: Vec<u8>| {
            let (m, _) = decode(&xml, &server().limits).unwrap();
            encode(&m, encoding)
        };
        let (o1, fx) = step(
            SessionState::default(),
            &wire(msg(1, "", PKG1)),
            &dev,
            &queue,
            None,
            &mut rng,
        );
        apply(&mut dev, &mut queue, &fx);
        let cred = o1
            .message
            .hdr
            .cred
            .as_ref()
            .expect("server Cred with the commands");
        assert_eq!(cred.data, md5_credential(&server_hash(), &[0; 4]));
        let sent = top_level(&o1);
        assert_eq!(sent.len(), 2);

        // The device holds the empty nonce: it refuses everything and issues a new nonce.
        let device_nonce = Nonce(b"dev-nonce-1".to_vec());
        let (o2, fx) = step(
            o1.state,
            &wire(refusal(2, 1, &device_nonce, &sent)),
            &dev,
            &queue,
            None,
            &mut rng,
        );
        apply(&mut dev, &mut queue, &fx);
        for id in ["fwv", "exec"] {
            assert!(fx.contains(&Effect::OperationRequeued {
                op_id: id.into(),
                status: StatusCode::INVALID_CREDENTIALS
            }));
        }
        assert!(
            !fx.iter().any(|e| matches!(
                e,
                Effect::OperationStatus { .. } | Effect::OperationNotDelivered { .. }
            )),
            "refused for our credentials is no outcome: {fx:?}"
        );
        assert!(fx.contains(&Effect::StoreServerNonce(device_nonce.clone())));
        assert!(!o2.session_over && o2.message.body.final_);
        let resent = top_level(&o2);
        assert_eq!(
            resent.iter().map(|c| c.1.as_str()).collect::<Vec<_>>(),
            vec!["Get", "Exec"],
            "both commands again, in order"
        );
        let cred = o2.message.hdr.cred.as_ref().expect("recomputed Cred");
        assert_eq!(cred.data, md5_credential(&server_hash(), &device_nonce.0));

        // Accepted now: statuses are the operations' outcomes, and the session ends.
        let ok = format!(
            r#"<Status><CmdID>1</CmdID><MsgRef>2</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd><Data>212</Data></Status><Status><CmdID>2</CmdID><MsgRef>2</MsgRef><CmdRef>{}</CmdRef><Cmd>Get</Cmd><Data>200</Data></Status><Status><CmdID>3</CmdID><MsgRef>2</MsgRef><CmdRef>{}</CmdRef><Cmd>Exec</Cmd><Data>202</Data></Status><Results><CmdID>4</CmdID><MsgRef>2</MsgRef><CmdRef>{}</CmdRef><Item><Source><LocURI>./DevDetail/FwV</LocURI></Source><Data>1.0</Data></Item></Results>"#,
            resent[0].0, resent[1].0, resent[0].0
        );
        let (o3, fx) = step(
            o2.state,
            &wire(msg(3, "", &ok)),
            &dev,
            &queue,
            None,
            &mut rng,
        );
        assert!(fx.contains(&Effect::OperationStatus {
            op_id: "fwv".into(),
            status: StatusCode::OK
        }));
        assert!(fx.contains(&Effect::OperationStatus {
            op_id: "exec".into(),
            status: StatusCode::ACCEPTED
        }));
        assert!(o3.session_over);
    }
}

#[test]
fn members_of_a_refused_sequence_go_out_again() {
    let mut dev = device_with_unknown_server_nonce();
    let mut queue: Vec<QueuedOperation> = fumo_queue()
        .into_iter()
        .map(|mut q| {
            q.sequence_group = Some("job".into());
            q
        })
        .collect();
    let mut rng = Counter(0);
    let (o1, fx) = step(
        SessionState::default(),
        &msg(1, "", PKG1),
        &dev,
        &queue,
        None,
        &mut rng,
    );
    apply(&mut dev, &mut queue, &fx);
    let sent = top_level(&o1);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, "Sequence");
    // One 401 for the Sequence; its members get no Status of their own.
    let nonce = Nonce(b"n2".to_vec());
    let (o2, fx) = step(
        o1.state,
        &refusal(2, 1, &nonce, &sent),
        &dev,
        &queue,
        None,
        &mut rng,
    );
    assert!(
        !fx.iter()
            .any(|e| matches!(e, Effect::OperationNotDelivered { .. }))
    );
    assert_eq!(
        fx.iter()
            .filter(|e| matches!(e, Effect::OperationRequeued { .. }))
            .count(),
        2
    );
    assert_eq!(
        top_level(&o2)
            .iter()
            .map(|c| c.1.as_str())
            .collect::<Vec<_>>(),
        vec!["Sequence"]
    );
}

#[test]
fn a_401_on_a_command_under_accepted_credentials_is_its_outcome() {
    let mut dev = device_with_unknown_server_nonce();
    let mut queue = vec![get("fwv", "./DevDetail/FwV")];
    let mut rng = Counter(0);
    let (o1, fx) = step(
        SessionState::default(),
        &msg(1, "", PKG1),
        &dev,
        &queue,
        None,
        &mut rng,
    );
    apply(&mut dev, &mut queue, &fx);
    let id = top_level(&o1)[0].0.clone();
    let body = format!(
        r#"<Status><CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd><Data>212</Data></Status><Status><CmdID>2</CmdID><MsgRef>1</MsgRef><CmdRef>{id}</CmdRef><Cmd>Get</Cmd><Data>401</Data></Status>"#
    );
    let (o2, fx) = step(o1.state, &msg(2, "", &body), &dev, &queue, None, &mut rng);
    assert!(fx.contains(&Effect::OperationStatus {
        op_id: "fwv".into(),
        status: StatusCode::INVALID_CREDENTIALS
    }));
    assert!(management(&o2).is_empty() && o2.session_over);
}

#[test]
fn a_device_that_keeps_refusing_ends_the_session_and_nothing_is_marked_failed() {
    let mut dev = device_with_unknown_server_nonce();
    let mut queue = vec![get("fwv", "./DevDetail/FwV")];
    let mut rng = Counter(0);
    let (mut o, fx) = step(
        SessionState::default(),
        &msg(1, "", PKG1),
        &dev,
        &queue,
        None,
        &mut rng,
    );
    apply(&mut dev, &mut queue, &fx);
    let mut all = Vec::new();
    for i in 2..=10 {
        let sent = top_level(&o);
        let nonce = Nonce(format!("n{i}").into_bytes());
        let (next, fx) = step(
            o.state,
            &refusal(i, i - 1, &nonce, &sent),
            &dev,
            &queue,
            None,
            &mut rng,
        );
        apply(&mut dev, &mut queue, &fx);
        all.extend(fx);
        o = next;
        if o.session_over {
            break;
        }
    }
    assert!(o.session_over, "the retry cap ends the session");
    assert!(all.contains(&Effect::SessionEnded {
        outcome: SessionOutcome::ServerAuthenticationRejected
    }));
    assert!(
        !all.iter()
            .any(|e| matches!(e, Effect::OperationStatus { .. }))
    );
    assert_eq!(queue.len(), 1, "still queued for a later session");
}

#[test]
fn a_next_nonce_that_is_not_base64_is_not_adopted() {
    let mut dev = device_with_unknown_server_nonce();
    let mut queue = vec![get("fwv", "./DevDetail/FwV")];
    let mut rng = Counter(0);
    let (o1, fx) = step(
        SessionState::default(),
        &msg(1, "", PKG1),
        &dev,
        &queue,
        None,
        &mut rng,
    );
    apply(&mut dev, &mut queue, &fx);
    let body = r#"<Status><CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd><Chal><Meta><Type xmlns="syncml:metinf">syncml:auth-md5</Type><Format xmlns="syncml:metinf">b64</Format><NextNonce xmlns="syncml:metinf">not base64!</NextNonce></Meta></Chal><Data>401</Data></Status>"#;
    let (o2, fx) = step(o1.state, &msg(2, "", body), &dev, &queue, None, &mut rng);
    assert!(fx.contains(&Effect::InvalidNextNonce));
    assert!(!fx.iter().any(|e| matches!(e, Effect::StoreServerNonce(_))));
    assert_eq!(
        o2.message.hdr.cred.as_ref().unwrap().data,
        md5_credential(&server_hash(), &[0; 4]),
        "our credentials keep the previous nonce"
    );
}
