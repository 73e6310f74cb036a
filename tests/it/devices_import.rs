//! Bulk provisioning. `POST /api/v1/devices/import`: NDJSON and CSV in all-or-nothing batches
//! with an exact report, the error list's cap, the body bound (413), the request's checks and
//! roles; and the simulator's `--provision` of fleet groups with their labels.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::devices_api::device_body;
use crate::devices_fleet::{dev_ids_of, message, q, send, viewer_token};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

fn ndjson_line(dev_id: &str) -> String {
    let mut body = device_body(dev_id);
    body["tags"] = json!({"batch": "import"});
    body.to_string()
}

async fn import(
    app: &TestApp,
    query: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    let res = app
        .admin(Method::POST, &format!("/api/v1/devices/import{query}"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn ndjson_import_commits_good_batches_and_rejects_bad_ones_whole() {
    let app = spawn_app().await;
    let (status, _) = send(&app, Method::POST, "/api/v1/devices", device_body("A9")).await;
    assert_eq!(status, StatusCode::CREATED);
    let mut bad_tz = device_body("B2");
    bad_tz["timezone"] = json!("Mars/Base");
    let lines = [
        ndjson_line("A1"),      // 1 ┐
        ndjson_line("A2"),      // 2 │ batch 1: committed
        ndjson_line("A3"),      // 3 ┘
        ndjson_line("B1"),      // 4 ┐
        bad_tz.to_string(),     // 5 │ batch 2: rejected (bad time zone, bad JSON)
        "   ".to_owned(),       // 6 │ blank: skipped, in no batch
        "{not json".to_owned(), // 7 ┘
        ndjson_line("C1"),      // 8 ┐
        ndjson_line("C1"),      // 9 │ batch 3: rejected (twice in the batch, already provisioned)
        ndjson_line("A9"),      // 10┘
        ndjson_line("D1"),      // 11┐ batch 4 (the rest): committed
        ndjson_line("D2"),      // 12┘ (no final newline)
    ];
    let (status, report) = import(
        &app,
        "?batch_size=3",
        "application/x-ndjson",
        lines.join("\n"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report,
        json!({
            "lines": 12,
            "imported": 5,
            "batches_committed": 2,
            "batches_rejected": 2,
            "rejected_batches": [{"first_line": 4, "last_line": 7}, {"first_line": 8, "last_line": 10}],
            "errors": [
                {"line": 5, "dev_id": "B2", "message": "timezone: \"Mars/Base\" is not an IANA time zone name (e.g. Europe/Paris)"},
                {"line": 7, "dev_id": null, "message": "invalid JSON: key must be a string (column 2)"},
                {"line": 9, "dev_id": "C1", "message": "dev_id is also on line 8 of this batch"},
                {"line": 10, "dev_id": "A9", "message": "a device with this dev_id is already provisioned"},
            ],
            "errors_not_listed": 0,
        })
    );
    assert_eq!(
        dev_ids_of(&app, &q("tag.batch=import")).await,
        ["A1", "A2", "A3", "D1", "D2"]
    );
    // Importing the same lines again: every batch now collides with what is there.
    let (_, again) = import(
        &app,
        "?batch_size=6",
        "application/x-ndjson",
        lines[..3].join("\n"),
    )
    .await;
    assert_eq!(
        (
            again["imported"].as_u64(),
            again["batches_rejected"].as_u64()
        ),
        (Some(0), Some(1))
    );
    assert_eq!(again["errors"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn csv_import_reads_labels_and_reports_long_and_bad_lines() {
    let app = spawn_app_with(|c| c.devices.import_max_line_bytes = 1024).await;
    let header = "dev_id,client_type,client_name,client_secret,server_type,server_name,server_secret,tags,groups,timezone,manufacturer,model,fw_version";
    let row = |dev_id: &str, client_type: &str| {
        format!(
            "{dev_id},{client_type},{dev_id},secret,md5,updraft,srv,\"ring=canary;site=Bldg 4, floor 2\",lab;eu,Europe/Paris,Acme,M1,1.0"
        )
    };
    let long = format!("E4,md5,E4,{},md5,updraft,srv,,,,,,", "x".repeat(1100));
    let body = [
        header.to_owned(), // 1
        row("E1", "md5"),  // 2 ┐ committed
        row("E2", "md5"),  // 3 ┘
        row("E3", "md5"),  // 4 ┐ rejected: line 5 too long
        long,              // 5 ┘
        row("E5", "sha1"), // 6 ┐ rejected: bad client type
        row("E6", "md5"),  // 7 ┘
        row("E7", "md5"),  // 8   committed
    ]
    .join("\r\n")
        + "\r\n";
    let (status, report) = import(&app, "?batch_size=2", "text/csv; charset=utf-8", body).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report,
        json!({
            "lines": 8,
            "imported": 3,
            "batches_committed": 2,
            "batches_rejected": 2,
            "rejected_batches": [{"first_line": 4, "last_line": 5}, {"first_line": 6, "last_line": 7}],
            "errors": [
                {"line": 5, "dev_id": null, "message": "the line is longer than 1024 bytes"},
                {"line": 6, "dev_id": "E5", "message": "client.type must be basic, md5 or hmac"},
            ],
            "errors_not_listed": 0,
        })
    );
    let (_, page) = send(
        &app,
        Method::GET,
        &format!("/api/v1/devices?{}", q("id=E1")),
        json!(null),
    )
    .await;
    let e1 = &page["devices"][0];
    assert_eq!(
        e1["tags"],
        json!({"ring": "canary", "site": "Bldg 4, floor 2"})
    );
    assert_eq!(e1["groups"], json!(["eu", "lab"]));
    assert_eq!(e1["timezone"], "Europe/Paris");
    assert_eq!(e1["inventory"]["model"], "M1");
    assert_eq!(
        dev_ids_of(&app, &q("model=M1 group=lab")).await,
        ["E1", "E2", "E7"]
    );

    // An unusable header row imports nothing.
    let (status, err) = import(
        &app,
        "",
        "text/csv",
        format!("dev_id,colour\n{}", row("F1", "md5")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        message(&err).starts_with("CSV header: unknown column \"colour\""),
        "{err}"
    );
    assert!(dev_ids_of(&app, &q("id=F1")).await.is_empty());
}

#[tokio::test]
async fn past_a_thousand_bad_lines_the_rest_are_counted() {
    let app = spawn_app().await;
    let body = "x\n".repeat(1005);
    let (status, report) = import(&app, "?batch_size=10000", "application/x-ndjson", body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["errors"].as_array().unwrap().len(), 1000);
    assert_eq!(report["errors_not_listed"], 5);
    assert_eq!(report["errors"][999]["line"], 1000);
    assert_eq!(report["batches_rejected"], 1);
}

#[tokio::test]
async fn the_body_bound_answers_413() {
    let app = spawn_app_with(|c| c.devices.import_max_bytes = 1024).await;
    // Declared too long: refused before anything is read.
    let body = format!("{}\n", ndjson_line("G1")).repeat(8);
    assert!(body.len() > 1024);
    let (status, err) = import(&app, "", "application/x-ndjson", body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        message(&err),
        "request body is larger than the limit of 1024 bytes"
    );
    assert!(dev_ids_of(&app, "").await.is_empty());

    // Streamed without a length: the batches before the bound stay, the rest is not read.
    let first = format!("{}\n{}\n", ndjson_line("H1"), ndjson_line("H2"));
    let rest = format!("{}\n", ndjson_line("H3")).repeat(6);
    let chunks: Vec<Result<String, std::io::Error>> = vec![Ok(first), Ok(rest)];
    let stream = futures_util::stream::iter(chunks);
    let (status, err) = import(
        &app,
        "?batch_size=1",
        "application/x-ndjson",
        reqwest::Body::wrap_stream(stream),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{err}");
    assert_eq!(
        message(&err),
        "request body is larger than the limit of 1024 bytes; 2 batch(es) with 2 device(s) before it were committed, 0 rejected; the rest was not read"
    );
    assert_eq!(dev_ids_of(&app, "").await, ["H1", "H2"]);
}

#[tokio::test]
async fn import_checks_its_request_and_the_role() {
    let app = spawn_app().await;
    let line = ndjson_line("K1");
    let (status, err) = import(&app, "", "application/json", line.clone()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{err}");
    for query in ["?batch_size=0", "?batch_size=10001", "?batchsize=5"] {
        let (status, err) = import(&app, query, "application/x-ndjson", line.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {err}");
    }
    let viewer = viewer_token(&app).await;
    let res = app
        .client
        .post(app.url("/api/v1/devices/import"))
        .bearer_auth(&viewer)
        .header("content-type", "application/x-ndjson")
        .body(line)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Viewers read the filtered list.
    let res = app
        .client
        .get(app.url(&format!("/api/v1/devices?{}", q("model=M1"))))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(dev_ids_of(&app, "").await.is_empty());
}

#[tokio::test]
async fn the_simulator_provisions_fleet_groups_with_their_labels() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("v1.bin"), b"image one").unwrap();
    let fleet = "[[group]]\nname = \"canaries\"\ncount = 2\ndev_id_prefix = \"IMEI:77\"\n\
                 manufacturer = \"Acme\"\nmodel = \"SIM-1\"\nfirmware_version = \"1.0.0\"\n\
                 image = \"v1.bin\"\nsecret = \"s\"\nserver_secret = \"ss\"\n\
                 tags = { ring = \"canary\" }\ngroups = [\"lab\"]\ntimezone = \"Asia/Tokyo\"\n\
                 [[group]]\nname = \"plain\"\ncount = 1\ndev_id_prefix = \"IMEI:88\"\n\
                 model = \"SIM-2\"\nfirmware_version = \"2.0\"\nimage = \"v1.bin\"\n\
                 secret = \"s\"\nserver_secret = \"ss\"\n";
    let fleet_path = dir.path().join("fleet.toml");
    std::fs::write(&fleet_path, fleet).unwrap();
    let run = updraft::simulator::FleetRun {
        fleet: fleet_path.clone(),
        server: app.url("/dm"),
        provision: true,
        api_url: Some(app.url("")),
        token: Some(app.admin_token.clone()),
        key_files: Vec::new(),
        // Provisioning only: the devices' run ends as it starts.
        duration: std::time::Duration::ZERO,
        push_listen: None,
    };
    let transport = std::sync::Arc::new(
        updraft::simulator::HttpTransport::new(std::time::Duration::from_secs(30)).unwrap(),
    );
    updraft::simulator::run_fleet(&run, transport.clone(), app.client.clone())
        .await
        .unwrap();
    let (_, page) = send(
        &app,
        Method::GET,
        &format!("/api/v1/devices?{}", q("tag.ring=canary group=lab")),
        json!(null),
    )
    .await;
    let devices = page["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2, "{page}");
    assert_eq!(devices[0]["dev_id"], "IMEI:771");
    assert_eq!(devices[0]["timezone"], "Asia/Tokyo");
    assert_eq!(devices[0]["inventory"]["manufacturer"], "Acme");
    assert_eq!(devices[0]["inventory"]["fw_version"], "1.0.0");
    assert_eq!(
        dev_ids_of(&app, &q("model=SIM-2 version=2.0")).await,
        ["IMEI:881"]
    );

    // A label the server refuses stops the run with the server's reason.
    std::fs::write(
        &fleet_path,
        fleet
            .replace("Asia/Tokyo", "Asia/Atlantis")
            .replace("IMEI:77", "IMEI:66"),
    )
    .unwrap();
    let err = updraft::simulator::run_fleet(&run, transport, app.client.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("group \"canaries\": provisioning IMEI:661 refused"),
        "{err}"
    );
    assert!(err.contains("Asia/Atlantis"), "{err}");
}
