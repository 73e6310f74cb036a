//! Devices at fleet scale: labels at provisioning and by PATCH, bulk tags, the selector over
//! the list (every field, pagination, agreement with `Selector::matches`). Bulk provisioning
//! (the import, the simulator's) has its own file, `devices_import.rs`.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use updraft::selector::Selector;

use crate::devices_api::device_body;
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

pub async fn viewer_token(app: &TestApp) -> String {
    let created: Value = app
        .admin(Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "ro", "role": "viewer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["secret"].as_str().unwrap().to_owned()
}

pub async fn send(app: &TestApp, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
    let res = app.admin(method, path).json(&body).send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

pub fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

/// A device body with labels and a declared inventory.
fn labelled(dev_id: &str, model: &str, version: &str, tags: Value, groups: Value) -> Value {
    let mut body = device_body(dev_id);
    body["tags"] = tags;
    body["groups"] = groups;
    body["inventory"] = json!({"manufacturer": "Acme", "model": model, "fw_version": version});
    body
}

pub async fn dev_ids_of(app: &TestApp, query: &str) -> Vec<String> {
    let (status, page) = send(
        app,
        Method::GET,
        &format!("/api/v1/devices?{query}"),
        json!(null),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{query}: {page}");
    page["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["dev_id"].as_str().unwrap().to_owned())
        .collect()
}

pub fn q(selector: &str) -> String {
    format!("selector={}", urlencode(selector))
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn provisioning_takes_labels_and_a_declared_inventory() {
    let app = spawn_app().await;
    let mut body = labelled(
        "IMEI:1",
        "M1",
        "1.0",
        json!({"ring": "canary", "site": "Bldg 4, floor 2"}),
        json!(["lab", "eu"]),
    );
    body["timezone"] = json!("Europe/Paris");
    body["inventory"]["hw_version"] = json!("rev2");
    let (status, created) = send(&app, Method::POST, "/api/v1/devices", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["tags"],
        json!({"ring": "canary", "site": "Bldg 4, floor 2"})
    );
    assert_eq!(created["groups"], json!(["eu", "lab"]));
    assert_eq!(created["timezone"], "Europe/Paris");
    assert_eq!(created["inventory"]["model"], "M1");
    assert_eq!(created["inventory"]["fw_version"], "1.0");
    assert_eq!(created["inventory"]["hw_version"], "rev2");
    let id = created["id"].as_str().unwrap();
    let (_, got) = send(
        &app,
        Method::GET,
        &format!("/api/v1/devices/{id}"),
        json!(null),
    )
    .await;
    assert_eq!(got, created);

    // Tags as a list of key=value; no labels at all.
    let mut listed = device_body("IMEI:2");
    listed["tags"] = json!(["ring=beta"]);
    let (status, created) = send(&app, Method::POST, "/api/v1/devices", listed).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["tags"], json!({"ring": "beta"}));
    let (_, plain) = send(&app, Method::POST, "/api/v1/devices", device_body("IMEI:3")).await;
    assert_eq!(
        (&plain["tags"], &plain["groups"], &plain["timezone"]),
        (&json!({}), &json!([]), &Value::Null)
    );

    for (field, value, needle) in [
        (
            "timezone",
            json!("Mars/Olympus"),
            "timezone: \"Mars/Olympus\" is not an IANA",
        ),
        ("tags", json!({"has space": "x"}), "tags: key \"has space\""),
        ("tags", json!(["ring"]), "\"ring\" is not key=value"),
        (
            "groups",
            json!(["lab", "lab"]),
            "groups: \"lab\" given twice",
        ),
        ("inventory", json!({"model": ""}), "inventory.model"),
        (
            "inventory",
            json!({"colour": "red"}),
            "unknown field `colour`",
        ),
    ] {
        let mut body = device_body("IMEI:9");
        body[field] = value;
        let (status, err) = send(&app, Method::POST, "/api/v1/devices", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {err}");
        assert!(message(&err).contains(needle), "{field}: {err}");
    }
    assert_eq!(dev_ids_of(&app, "").await, ["IMEI:1", "IMEI:2", "IMEI:3"]);
}

#[tokio::test]
async fn patch_replaces_each_label_given_and_only_those() {
    let app = spawn_app().await;
    let mut body = labelled(
        "IMEI:1",
        "M1",
        "1.0",
        json!({"ring": "canary"}),
        json!(["lab"]),
    );
    body["timezone"] = json!("Asia/Tokyo");
    let (_, created) = send(&app, Method::POST, "/api/v1/devices", body).await;
    let path = format!("/api/v1/devices/{}", created["id"].as_str().unwrap());

    let (status, patched) = send(
        &app,
        Method::PATCH,
        &path,
        json!({"tags": {"ring": "beta", "site": "b4"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["tags"], json!({"ring": "beta", "site": "b4"}));
    assert_eq!(patched["groups"], json!(["lab"]));
    assert_eq!(patched["timezone"], "Asia/Tokyo");

    let (_, patched) = send(
        &app,
        Method::PATCH,
        &path,
        json!({"groups": ["eu", "field"], "timezone": null}),
    )
    .await;
    assert_eq!(patched["tags"], json!({"ring": "beta", "site": "b4"}));
    assert_eq!(patched["groups"], json!(["eu", "field"]));
    assert_eq!(patched["timezone"], Value::Null);

    let (_, patched) = send(
        &app,
        Method::PATCH,
        &path,
        json!({"tags": {}, "groups": [], "timezone": "UTC"}),
    )
    .await;
    assert_eq!(
        (&patched["tags"], &patched["groups"]),
        (&json!({}), &json!([]))
    );
    assert_eq!(patched["timezone"], "UTC");

    // Refused whole: a bad time zone leaves the tags given beside it unwritten.
    let (status, err) = send(
        &app,
        Method::PATCH,
        &path,
        json!({"tags": {"a": "b"}, "timezone": "Nowhere"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&err).starts_with("timezone:"), "{err}");
    for body in [
        json!({"tags": null}),
        json!({"groups": null}),
        json!({"colour": "red"}),
    ] {
        let (status, err) = send(&app, Method::PATCH, &path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
    }
    let (_, now) = send(&app, Method::GET, &path, json!(null)).await;
    assert_eq!(now["tags"], json!({}));

    let (status, _) = send(
        &app,
        Method::PATCH,
        "/api/v1/devices/no-such-id",
        json!({"groups": []}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let viewer = viewer_token(&app).await;
    let res = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&viewer)
        .json(&json!({"groups": ["x"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

/// Provisions a small fleet covering every selector field.
async fn fleet(app: &TestApp) -> Vec<Value> {
    let rows = [
        (
            "IMEI:01",
            "Acme",
            "M1",
            "1.0",
            "rev1",
            json!({"ring": "canary", "site": "b4"}),
            json!(["lab"]),
        ),
        (
            "IMEI:02",
            "Acme",
            "M1",
            "1.0",
            "rev2",
            json!({"ring": "canary"}),
            json!(["lab", "eu"]),
        ),
        (
            "IMEI:03",
            "Acme",
            "M1",
            "2.0",
            "rev2",
            json!({"ring": "beta", "site": "b4"}),
            json!(["eu"]),
        ),
        (
            "IMEI:04",
            "Acme",
            "M2",
            "1.0",
            "rev1",
            json!({}),
            json!(["us"]),
        ),
        (
            "IMEI:05",
            "Bolt",
            "M2",
            "2.0",
            "rev1",
            json!({"ring": "canary", "site": "b5"}),
            json!([]),
        ),
        (
            "IMEI:06",
            "Bolt",
            "M3",
            "3.0",
            "rev3",
            json!({"site": "b4"}),
            json!(["lab", "us"]),
        ),
        (
            "IMEI:07",
            "Bolt",
            "M3",
            "1.0",
            "rev2",
            json!({"ring": "stable"}),
            json!(["eu", "us"]),
        ),
    ];
    let mut created = Vec::new();
    for (dev_id, man, model, version, hw, tags, groups) in rows {
        let mut body = labelled(dev_id, model, version, tags, groups);
        body["inventory"] =
            json!({"manufacturer": man, "model": model, "fw_version": version, "hw_version": hw});
        let (status, device) = send(app, Method::POST, "/api/v1/devices", body).await;
        assert_eq!(status, StatusCode::CREATED, "{device}");
        created.push(device);
    }
    // One with no inventory at all: it matches no value of any inventory field.
    let (_, bare) = send(app, Method::POST, "/api/v1/devices", device_body("IMEI:08")).await;
    created.push(bare);
    created
}

#[tokio::test]
async fn the_list_filters_by_every_selector_field_and_pages_by_dev_id() {
    let app = spawn_app().await;
    let devices = fleet(&app).await;
    let id3 = devices[2]["id"].as_str().unwrap().to_owned();
    let cases: Vec<(String, &[&str])> = vec![
        (
            "".into(),
            &[
                "IMEI:01", "IMEI:02", "IMEI:03", "IMEI:04", "IMEI:05", "IMEI:06", "IMEI:07",
                "IMEI:08",
            ],
        ),
        (
            "manufacturer=Bolt".into(),
            &["IMEI:05", "IMEI:06", "IMEI:07"],
        ),
        (
            "model=M1,M3".into(),
            &["IMEI:01", "IMEI:02", "IMEI:03", "IMEI:06", "IMEI:07"],
        ),
        (
            "version=1.0".into(),
            &["IMEI:01", "IMEI:02", "IMEI:04", "IMEI:07"],
        ),
        ("model=M1 version=1.0".into(), &["IMEI:01", "IMEI:02"]),
        (
            "hw=rev2,rev3".into(),
            &["IMEI:02", "IMEI:03", "IMEI:06", "IMEI:07"],
        ),
        // Tags: every one must match.
        ("tag.ring=canary".into(), &["IMEI:01", "IMEI:02", "IMEI:05"]),
        ("tag.ring=canary tag.site=b4".into(), &["IMEI:01"]),
        ("tag.site=b4 tag.ring=stable".into(), &[]),
        // Groups: any one.
        ("group=lab".into(), &["IMEI:01", "IMEI:02", "IMEI:06"]),
        (
            "group=lab,us".into(),
            &["IMEI:01", "IMEI:02", "IMEI:04", "IMEI:06", "IMEI:07"],
        ),
        ("group=eu tag.ring=canary".into(), &["IMEI:02"]),
        // Ids: the service's id or the DevId.
        (format!("id={id3},IMEI:05"), &["IMEI:03", "IMEI:05"]),
        ("id=IMEI:99".into(), &[]),
        (
            "manufacturer=Acme model=M2 version=1.0 hw=rev1 group=us".into(),
            &["IMEI:04"],
        ),
    ];
    for (selector, expected) in &cases {
        assert_eq!(
            dev_ids_of(&app, &q(selector)).await,
            *expected,
            "{selector}"
        );
    }

    // Keyset pages of 2 through a selection, by DevId.
    let selector = q("group=lab,us,eu");
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/api/v1/devices?{selector}&limit=2&after={}", urlencode(a)),
            None => format!("/api/v1/devices?{selector}&limit=2"),
        };
        let (_, page) = send(&app, Method::GET, &path, json!(null)).await;
        let ids: Vec<String> = page["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["dev_id"].as_str().unwrap().to_owned())
            .collect();
        assert!(ids.len() <= 2);
        seen.extend(ids);
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "IMEI:01", "IMEI:02", "IMEI:03", "IMEI:04", "IMEI:06", "IMEI:07"
        ]
    );

    // Labels come with each device of a page.
    let (_, page) = send(
        &app,
        Method::GET,
        &format!("/api/v1/devices?{}", q("id=IMEI:02")),
        json!(null),
    )
    .await;
    assert_eq!(page["devices"][0]["tags"], json!({"ring": "canary"}));
    assert_eq!(page["devices"][0]["groups"], json!(["eu", "lab"]));

    for (query, needle) in [
        (q("colour=red"), "unknown field `colour`"),
        (q("model=\"M1"), "unterminated quoted value"),
        (q("tag.ring=a,b"), "takes one value"),
        ("selecter=model%3DM1".to_owned(), "unknown field `selecter`"),
        ("limit=0".to_owned(), "limit must be between 1 and 500"),
    ] {
        let (status, err) = send(
            &app,
            Method::GET,
            &format!("/api/v1/devices?{query}"),
            json!(null),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {err}");
        assert!(message(&err).contains(needle), "{query}: {err}");
    }
}

/// The store's SQL and `Selector::matches` select the same devices, and `count` agrees.
#[tokio::test]
async fn sql_selection_agrees_with_matching_one_device() {
    let app = spawn_app().await;
    fleet(&app).await;
    let store = app.store().await;
    let all = store
        .devices()
        .select(&Selector::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(all.len(), 8);
    let texts = [
        "",
        "manufacturer=Acme",
        "model=M2",
        "model=M1,M2 version=2.0",
        "version=9.9",
        "hw=rev1 manufacturer=Bolt",
        "tag.ring=canary",
        "tag.site=b4 tag.ring=beta",
        "tag.nothing=x",
        "group=eu",
        "group=us,lab tag.site=b4",
        "id=IMEI:07,IMEI:08",
        "group=nowhere",
        "model=M3 group=eu,lab hw=rev2,rev3",
    ];
    for text in texts {
        let selector: Selector = text.parse().unwrap();
        let by_sql: Vec<String> = store
            .devices()
            .select(&selector, None, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.dev_id)
            .collect();
        let by_facts: Vec<String> = all
            .iter()
            .filter(|d| selector.matches(&d.facts()))
            .map(|d| d.dev_id.clone())
            .collect();
        assert_eq!(by_sql, by_facts, "{text}");
        assert_eq!(
            store.devices().count(&selector).await.unwrap(),
            by_sql.len() as u64,
            "{text}"
        );
    }
}

#[tokio::test]
async fn bulk_tags_change_the_selected_devices_in_one_step() {
    let app = spawn_app_with(|c| c.devices.bulk_tag_max_devices = 4).await;
    fleet(&app).await;
    let (status, result) = send(
        &app,
        Method::POST,
        "/api/v1/devices/tags",
        json!({"selector": {"models": ["M1"]}, "add": {"ring": "beta", "wave": "1"}, "remove": ["site"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result, json!({"matched": 3, "changed": 3}));
    assert_eq!(
        dev_ids_of(&app, &q("tag.ring=beta tag.wave=1")).await,
        ["IMEI:01", "IMEI:02", "IMEI:03"]
    );
    assert_eq!(dev_ids_of(&app, &q("tag.site=b4")).await, ["IMEI:06"]);
    // The same change again changes nothing; the list form of `add` works too.
    let (_, again) = send(
        &app,
        Method::POST,
        "/api/v1/devices/tags",
        json!({"selector": {"models": ["M1"]}, "add": ["ring=beta", "wave=1"], "remove": ["site"]}),
    )
    .await;
    assert_eq!(again, json!({"matched": 3, "changed": 0}));
    // Removing only: the devices that had the key change.
    let (_, removed) = send(
        &app,
        Method::POST,
        "/api/v1/devices/tags",
        json!({"selector": {"groups": ["us"]}, "remove": ["ring"]}),
    )
    .await;
    assert_eq!(removed, json!({"matched": 3, "changed": 1}));
    assert!(dev_ids_of(&app, &q("tag.ring=stable")).await.is_empty());

    // Over the device bound, and over 32 tags on a device: refused, nothing written.
    let (status, err) = send(
        &app,
        Method::POST,
        "/api/v1/devices/tags",
        json!({"selector": {}, "add": {"x": "1"}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["error"]["code"], "too_many_devices");
    assert!(
        message(&err).contains("selects 8 devices, more than the 4"),
        "{err}"
    );
    let many: BTreeMap<String, String> =
        (0..31).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    let (status, err) = send(
        &app,
        Method::POST,
        "/api/v1/devices/tags",
        json!({"selector": {"device_ids": ["IMEI:01", "IMEI:04"]}, "add": many}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["error"]["code"], "too_many_tags");
    assert!(
        message(&err).starts_with("1 device(s) would carry more than 32 tags"),
        "{err}"
    );
    assert!(dev_ids_of(&app, &q("tag.k0=v")).await.is_empty());

    for (body, needle) in [
        (
            json!({"selector": {}}),
            "add or remove must name at least one tag",
        ),
        (
            json!({"selector": {}, "add": {"a": "1"}, "remove": ["a"]}),
            "\"a\" is also in add",
        ),
        (
            json!({"selector": {}, "remove": ["bad key"]}),
            "remove: key",
        ),
        (
            json!({"selector": {"models": [""]}, "add": {"a": "1"}}),
            "selector models",
        ),
        (json!({"add": {"a": "1"}}), "missing field `selector`"),
    ] {
        let (status, err) = send(&app, Method::POST, "/api/v1/devices/tags", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
        assert!(message(&err).contains(needle), "{body}: {err}");
    }
    let viewer = viewer_token(&app).await;
    let res = app
        .client
        .post(app.url("/api/v1/devices/tags"))
        .bearer_auth(&viewer)
        .json(&json!({"selector": {}, "add": {"a": "1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}
