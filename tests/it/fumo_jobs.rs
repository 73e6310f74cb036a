//! Update jobs through real DM sessions with a scripted FUMO device: the FwV read in the
//! session chooses the package, the FUMO node is discovered, PkgURL + Exec go out in one
//! Sequence, the 202 makes the job accepted, the Generic Alert 1226 (by Correlator) and the
//! FwV of the next session decide the verdict.

use std::time::Duration;

use reqwest::{Method, StatusCode as Http};
use serde_json::{Value, json};
use updraft::dm::auth::basic_credential;
use updraft::dm::message::{
    Alert, AlertCode, Command, Cred, Data, Format, Item, ItemCommand, Meta, Results, Source,
    Status, StatusCode, SyncBody, SyncHdr, SyncML, Target,
};
use updraft::dm::{Encoding, Limits, decode, encode};

use crate::helpers::firmware::{
    add_firmware, firmware_url, generate_key, get_json, noise, variant, wait_for_job,
};
use crate::helpers::{TestApp, spawn_app_with, wait_for};

/// A scripted device: its FUMO node sits at a vendor location, found only by discovery.
struct Device {
    dev_id: String,
    secret: String,
    fw_version: String,
    session: u32,
    msg_id: u32,
    path: String,
    /// What the server set and executed.
    pkg_url: Option<String>,
    correlator: Option<String>,
    execs: usize,
}

const NODE: &str = "./Vendor/FwUpdate/main";

impl Device {
    fn header(&self, cred: bool) -> SyncHdr {
        SyncHdr {
            ver_dtd: "1.2".into(),
            ver_proto: "DM/1.2".into(),
            session_id: self.session.to_string(),
            msg_id: self.msg_id.into(),
            target: Target::uri("http://updraft.test/dm"),
            source: Source {
                loc_uri: self.dev_id.clone(),
                loc_name: Some(self.dev_id.clone()),
            },
            cred: cred.then(|| Cred {
                meta: Some(Meta {
                    format: Some(Format::B64),
                    type_: Some("syncml:auth-basic".into()),
                    ..Meta::default()
                }),
                data: basic_credential(&self.dev_id, &self.secret),
            }),
            ..SyncHdr::default()
        }
    }

    fn alert(
        cmd_id: u32,
        code: AlertCode,
        correlator: Option<String>,
        items: Vec<Item>,
    ) -> Command {
        Command::Alert(Alert {
            cmd_id: cmd_id.into(),
            no_resp: false,
            cred: None,
            data: code,
            correlator,
            items,
        })
    }

    /// Package 1, with the Generic Alert 1226 report when one is owed.
    fn package1(&mut self, report: Option<u32>) -> SyncML {
        self.session += 1;
        self.msg_id = 1;
        self.path = "/dm".into();
        let mut commands = vec![
            Self::alert(1, AlertCode::CLIENT_INITIATED_MGMT, None, Vec::new()),
            Command::Replace(ItemCommand {
                cmd_id: 2.into(),
                items: ["Man", "Mod"]
                    .iter()
                    .zip(["Acme", "M1"])
                    .map(|(leaf, v)| Item {
                        source: Some(Source::uri(format!("./DevInfo/{leaf}"))),
                        data: Some(Data::Text(v.into())),
                        ..Item::default()
                    })
                    .collect(),
                ..ItemCommand::default()
            }),
        ];
        if let Some(code) = report {
            commands.push(Self::alert(
                3,
                AlertCode::GENERIC_ALERT,
                self.correlator.clone(),
                vec![Item {
                    source: Some(Source::uri(NODE)),
                    meta: Some(Meta {
                        format: Some(Format::Int),
                        type_: Some(
                            "org.openmobilealliance.dm.firmwareupdate.downloadandupdate".into(),
                        ),
                        ..Meta::default()
                    }),
                    data: Some(Data::Text(code.to_string())),
                    ..Item::default()
                }],
            ));
        }
        SyncML {
            hdr: self.header(true),
            body: SyncBody {
                commands,
                final_: true,
            },
        }
    }

    fn status(cmd_id: &mut u32, msg_ref: &str, cmd_ref: &str, cmd: &str, code: u16) -> Command {
        *cmd_id += 1;
        Command::Status(Status {
            cmd_id: (*cmd_id).into(),
            msg_ref: Some(msg_ref.into()),
            cmd_ref: Some(cmd_ref.into()),
            cmd: cmd.into(),
            target_ref: Vec::new(),
            source_ref: Vec::new(),
            cred: None,
            chal: None,
            data: StatusCode(code),
            items: Vec::new(),
        })
    }

    /// The device's answer to a server message: a Status per command, Results for Gets.
    fn answer(&mut self, reply: &SyncML) -> Option<SyncML> {
        if let Some(uri) = &reply.hdr.resp_uri {
            self.path = format!("/dm{}", uri.split_once("/dm").unwrap().1);
        }
        let msg_ref = reply.hdr.msg_id.0.clone();
        let mut out = Vec::new();
        let mut id = 0;
        out.push(Self::status(&mut id, &msg_ref, "0", "SyncHdr", 200));
        let mut commands: Vec<&Command> = reply.body.commands.iter().collect();
        let mut i = 0;
        let mut anything = false;
        while i < commands.len() {
            let c = commands[i];
            i += 1;
            match c {
                Command::Status(_) => {}
                Command::Sequence(seq) => {
                    anything = true;
                    out.push(Self::status(
                        &mut id,
                        &msg_ref,
                        &seq.cmd_id.0,
                        "Sequence",
                        200,
                    ));
                    commands.splice(i..i, seq.commands.iter());
                }
                Command::Get(g) => {
                    anything = true;
                    let uri = g.items[0].target.as_ref().unwrap().loc_uri.clone();
                    let (code, items) = self.get(&uri);
                    out.push(Self::status(&mut id, &msg_ref, &g.cmd_id.0, "Get", code));
                    if !items.is_empty() {
                        id += 1;
                        out.push(Command::Results(Results {
                            cmd_id: id.into(),
                            msg_ref: Some(updraft::dm::message::Id(msg_ref.clone())),
                            cmd_ref: g.cmd_id.clone(),
                            items,
                            ..Results::default()
                        }));
                    }
                }
                Command::Replace(r) => {
                    anything = true;
                    let item = &r.items[0];
                    if item.target.as_ref().unwrap().loc_uri.ends_with("/PkgURL")
                        && let Some(Data::Text(url)) = &item.data
                    {
                        self.pkg_url = Some(url.clone());
                    }
                    out.push(Self::status(&mut id, &msg_ref, &r.cmd_id.0, "Replace", 200));
                }
                Command::Exec(e) => {
                    anything = true;
                    self.execs += 1;
                    self.correlator = e.correlator.clone();
                    out.push(Self::status(&mut id, &msg_ref, &e.cmd_id.0, "Exec", 202));
                }
                other => panic!("unexpected command {other:?}"),
            }
        }
        if !anything && reply.body.final_ {
            return None;
        }
        self.msg_id += 1;
        Some(SyncML {
            hdr: self.header(false),
            body: SyncBody {
                commands: out,
                final_: true,
            },
        })
    }

    fn get(&self, uri: &str) -> (u16, Vec<Item>) {
        let leaf = |u: &str, v: &str| Item {
            source: Some(Source::uri(u)),
            data: Some(Data::Text(v.into())),
            ..Item::default()
        };
        match uri {
            "./DevDetail/FwV" => (200, vec![leaf(uri, &self.fw_version)]),
            "./Vendor?list=Struct" | "./Vendor/FwUpdate?list=Struct" => (
                200,
                [
                    "",
                    "/DownloadAndUpdate",
                    "/DownloadAndUpdate/PkgURL",
                    "/State",
                    "/PkgVersion",
                ]
                .iter()
                .map(|s| leaf(&format!("{NODE}{s}"), ""))
                .collect(),
            ),
            u if u.ends_with("/State") => (200, vec![leaf(uri, "10")]),
            _ => (404, Vec::new()),
        }
    }
}

async fn exchange(app: &TestApp, dev: &Device, msg: &SyncML) -> SyncML {
    let res = app
        .client
        .post(app.url(&dev.path))
        .header("content-type", "application/vnd.syncml.dm+xml")
        .body(encode(msg, Encoding::Xml))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), Http::OK);
    decode(&res.bytes().await.unwrap(), &Limits::default())
        .unwrap()
        .0
}

/// One whole session: Package 1, then answers until the server has nothing more.
async fn session(app: &TestApp, dev: &mut Device, report: Option<u32>) {
    let mut msg = dev.package1(report);
    for _ in 0..20 {
        let reply = exchange(app, dev, &msg).await;
        match dev.answer(&reply) {
            Some(next) => msg = next,
            None => return,
        }
    }
    panic!("the session did not end");
}

async fn job(app: &TestApp, id: i64) -> Value {
    get_json(app, &format!("/api/v1/updates/{id}")).await
}

/// Firmware 1.0 and 2.0 of model M1, their packages built (full and a delta from 1.0).
async fn release(app: &TestApp) -> (Value, Value, Vec<u8>) {
    generate_key(app).await;
    let base = noise(5, 48 * 1024);
    let v1 = add_firmware(app, "M1", "1.0", base.clone()).await;
    let new = variant(&base, 3);
    // 2.0 fixes a vulnerability: devices on it must never be rolled back.
    let res = app
        .admin(
            Method::POST,
            &firmware_url(&[
                ("manufacturer", "Acme"),
                ("model", "M1"),
                ("version", "2.0"),
                ("security_version", "2"),
            ]),
        )
        .body(new.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), Http::CREATED);
    let v2: Value = res.json().await.unwrap();
    assert_eq!(v2["security_version"], 2);
    let jobs: Value = app
        .admin(Method::POST, "/api/v1/packages/builds")
        .json(&json!({"target_firmware_id": v2["id"], "source_firmware_ids": [v1["id"]]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for j in jobs["jobs"].as_array().expect("build jobs") {
        let done = wait_for_job(app, j["id"].as_i64().unwrap(), Duration::from_secs(60)).await;
        assert_eq!(done["state"], "succeeded", "{done}");
    }
    (v1, v2, new)
}

async fn provision(app: &TestApp, dev_id: &str) -> String {
    let res = app
        .admin(Method::POST, "/api/v1/devices")
        .json(&json!({
            "dev_id": dev_id,
            "client": {"type": "basic", "name": dev_id, "secret": "pw"},
            "server": {"type": "md5", "name": "updraft", "secret": "srv"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), Http::CREATED);
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn device(dev_id: &str) -> Device {
    Device {
        dev_id: dev_id.into(),
        secret: "pw".into(),
        fw_version: "1.0".into(),
        session: 0,
        msg_id: 1,
        path: "/dm".into(),
        pkg_url: None,
        correlator: None,
        execs: 0,
    }
}

fn configured(c: &mut updraft::config::Config) {
    c.dm.public_url = None;
    c.builds.poll_interval_ms = 50;
    c.updates.fumo_roots = vec!["./FUMO".into(), "./Vendor".into()];
}

#[tokio::test]
async fn a_job_delivers_the_delta_by_url_and_succeeds_only_on_the_new_fwv() {
    let app = spawn_app_with(configured).await;
    let (_, v2, _) = release(&app).await;
    let id = provision(&app, "IMEI:770000000000001").await;
    let res = app
        .admin(Method::POST, &format!("/api/v1/devices/{id}/updates"))
        .json(&json!({"target_firmware_id": v2["id"], "delivery": "url"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), Http::CREATED);
    let update: Value = res.json().await.unwrap();
    let uid = update["id"].as_i64().unwrap();

    let mut dev = device("IMEI:770000000000001");
    session(&app, &mut dev, None).await;
    let j = job(&app, uid).await;
    assert_eq!(j["state"], "accepted", "{j}");
    assert_eq!(j["fumo_node"], NODE, "found by discovery, not hard-coded");
    assert_eq!(
        j["package_kind"], "delta",
        "a delta from the FwV read in the session"
    );
    assert_eq!(dev.execs, 1);
    assert_eq!(dev.correlator.as_deref(), j["correlator"].as_str());

    // The PkgURL serves the chosen package.
    let url = dev.pkg_url.clone().expect("PkgURL set");
    let path = format!("/dl{}", url.split_once("/dl").unwrap().1);
    let bytes = app.client.get(app.url(&path)).send().await.unwrap();
    assert_eq!(bytes.status(), Http::OK);
    let package = get_json(&app, &format!("/api/v1/packages/{}", j["package_id"])).await;
    let size = package["size"].as_u64().unwrap();
    assert_eq!(bytes.bytes().await.unwrap().len() as u64, size);
    assert_eq!(
        package["manifest"]["security_version"], 2,
        "the firmware's security version is signed into its packages: {package}"
    );
    // The download route accounts the job's bytes; the job shows them.
    wait_for(
        "the job's bytes served",
        Duration::from_secs(10),
        || async {
            let j = job(&app, uid).await;
            if j["bytes_served"].as_u64() == Some(size) {
                Ok(())
            } else {
                Err(j.to_string())
            }
        },
    )
    .await;

    // The device reboots into 2.0 and reports 200: confirmed by the FwV of that session.
    dev.fw_version = "2.0".into();
    session(&app, &mut dev, Some(200)).await;
    let j = job(&app, uid).await;
    assert_eq!(j["state"], "succeeded", "{j}");
    assert_eq!(j["result_code"], 200);
    assert_eq!(j["confirmed_version"], "2.0");
    assert_eq!(dev.execs, 1, "nothing sent twice");
    let states: Vec<&str> = j["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "pending",
            "in_session",
            "downloading",
            "accepted",
            "confirming",
            "succeeded"
        ]
    );
}

#[tokio::test]
async fn a_success_report_with_the_old_fwv_is_not_confirmed_and_another_model_is_incompatible() {
    let app = spawn_app_with(configured).await;
    let (_, v2, _) = release(&app).await;
    let id = provision(&app, "IMEI:770000000000002").await;
    let uid = app
        .admin(Method::POST, &format!("/api/v1/devices/{id}/updates"))
        .json(&json!({"target_firmware_id": v2["id"]}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let mut dev = device("IMEI:770000000000002");
    session(&app, &mut dev, None).await;
    // Reports success, still runs 1.0: it fell back.
    session(&app, &mut dev, Some(200)).await;
    let j = job(&app, uid).await;
    assert_eq!(j["state"], "failed", "{j}");
    assert_eq!(j["failure"], "not_confirmed");

    // Firmware of another model: the device gets nothing.
    let other = add_firmware(&app, "M9", "9.0", noise(9, 4096)).await;
    let uid = app
        .admin(Method::POST, &format!("/api/v1/devices/{id}/updates"))
        .json(&json!({"target_firmware_id": other["id"]}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let execs = dev.execs;
    session(&app, &mut dev, None).await;
    let j = wait_for("the job's verdict", Duration::from_secs(5), || async {
        let j = job(&app, uid).await;
        if j["state"] == "incompatible" {
            Ok(j)
        } else {
            Err(j.to_string())
        }
    })
    .await;
    assert!(j["package_id"].is_null());
    assert_eq!(dev.execs, execs, "no Exec for an incompatible device");
}

async fn start_job(app: &TestApp, device: &str, firmware: &Value, extra: Value) -> i64 {
    let mut body = json!({"target_firmware_id": firmware["id"]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let res = app
        .admin(Method::POST, &format!("/api/v1/devices/{device}/updates"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), Http::CREATED);
    res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

async fn wait_state(app: &TestApp, uid: i64, state: &str) -> Value {
    wait_for(
        &format!("job {uid} {state}"),
        Duration::from_secs(20),
        || async {
            let j = job(app, uid).await;
            if j["state"] == state {
                Ok(j)
            } else {
                Err(j.to_string())
            }
        },
    )
    .await
}

#[tokio::test]
async fn a_corrupted_download_is_retried_with_a_new_correlator_and_a_bad_signature_is_not() {
    let app = spawn_app_with(|c| {
        configured(c);
        c.updates.retry_base_secs = 1;
        c.updates.tick_ms = 50;
    })
    .await;
    let (_, v2, _) = release(&app).await;
    let id = provision(&app, "IMEI:770000000000003").await;
    let uid = start_job(&app, &id, &v2, json!({})).await;
    let mut dev = device("IMEI:770000000000003");
    session(&app, &mut dev, None).await;
    let first = dev.correlator.clone().unwrap();
    // 402: corrupted package; transient, so retried after the backoff.
    session(&app, &mut dev, Some(402)).await;
    let j = job(&app, uid).await;
    assert_eq!(j["state"], "retry_wait", "{j}");
    assert_eq!(j["result_code"], 402);
    let j = wait_state(&app, uid, "pending").await;
    assert_eq!(j["attempt"], 2);
    session(&app, &mut dev, None).await;
    assert_eq!(dev.execs, 2, "one Exec per attempt");
    assert_ne!(dev.correlator.as_deref(), Some(first.as_str()));
    assert_eq!(job(&app, uid).await["state"], "accepted");
    // 404 (signature validation failed) on the second attempt: permanent.
    session(&app, &mut dev, Some(404)).await;
    let j = job(&app, uid).await;
    assert_eq!(j["state"], "failed", "{j}");
    assert!(j["failure"].as_str().unwrap().contains("404"), "{j}");
    session(&app, &mut dev, None).await;
    assert_eq!(dev.execs, 2, "a permanent failure is not retried");
}

#[tokio::test]
async fn a_silent_device_is_notified_again_then_times_out() {
    let app = spawn_app_with(|c| {
        configured(c);
        c.updates.report_timeout_secs = 1;
        c.updates.tick_ms = 50;
    })
    .await;
    let (_, v2, _) = release(&app).await;
    let id = provision(&app, "IMEI:770000000000004").await;
    let deadline = chrono::Utc::now() + chrono::Duration::seconds(4);
    let uid = start_job(&app, &id, &v2, json!({"deadline": deadline})).await;
    let mut dev = device("IMEI:770000000000004");
    session(&app, &mut dev, None).await;
    assert_eq!(job(&app, uid).await["state"], "accepted");
    // No report: after the report timeout the job chases it (its history says so) ...
    wait_for("the report chase", Duration::from_secs(10), || async {
        let j = job(&app, uid).await;
        let chased = j["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["note"].as_str().unwrap().contains("notified again"));
        if chased { Ok(()) } else { Err(j.to_string()) }
    })
    .await;
    // ... and at the deadline it has timed out, without a second Exec.
    let j = wait_state(&app, uid, "timed_out").await;
    assert!(j["finished_at"].is_string());
    session(&app, &mut dev, None).await;
    assert_eq!(dev.execs, 1);
}

#[tokio::test]
async fn a_device_on_a_version_without_a_delta_gets_the_full_package() {
    let app = spawn_app_with(configured).await;
    let (_, v2, _) = release(&app).await;
    let id = provision(&app, "IMEI:770000000000005").await;
    let uid = start_job(&app, &id, &v2, json!({"delivery": "url"})).await;
    let mut dev = device("IMEI:770000000000005");
    // Only a delta from 1.0 exists: a device on 0.9 is given the full image.
    dev.fw_version = "0.9".into();
    session(&app, &mut dev, None).await;
    let j = job(&app, uid).await;
    assert_eq!(j["state"], "accepted", "{j}");
    assert_eq!(j["package_kind"], "full", "{j}");
    let package = get_json(&app, &format!("/api/v1/packages/{}", j["package_id"])).await;
    assert_eq!(package["kind"], "full");
}

#[tokio::test]
async fn a_report_under_another_correlator_is_not_the_jobs() {
    let app = spawn_app_with(configured).await;
    let (_, v2, _) = release(&app).await;
    let id = provision(&app, "IMEI:770000000000006").await;
    let uid = start_job(&app, &id, &v2, json!({})).await;
    let mut dev = device("IMEI:770000000000006");
    session(&app, &mut dev, None).await;
    assert_eq!(job(&app, uid).await["state"], "accepted");
    // A failure report for an operator's own Exec, then one for an earlier attempt.
    for foreign in ["job-42", &format!("upd-{uid}-0")] {
        let ours = dev.correlator.replace(foreign.to_owned());
        session(&app, &mut dev, Some(410)).await;
        dev.correlator = ours;
        let j = job(&app, uid).await;
        assert_eq!(j["state"], "accepted", "{foreign}: {j}");
        assert!(j["result_code"].is_null());
    }
}
