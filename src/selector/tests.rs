//! Selector tests: the JSON shape, bounds, the text syntax (with a round-trip property) and matching.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

#[test]
fn tags_deserialize_from_an_object_or_a_list_and_serialize_as_the_object() {
    let from_object: Selector =
        serde_json::from_str(r#"{"tags": {"ring": "canary", "site": "b4"}}"#).unwrap();
    let from_list: Selector =
        serde_json::from_str(r#"{"tags": ["ring=canary", "site=b4"]}"#).unwrap();
    assert_eq!(from_object, from_list);
    assert_eq!(from_list.tags, tags(&[("ring", "canary"), ("site", "b4")]));
    assert_eq!(
        serde_json::to_value(&from_list).unwrap(),
        serde_json::json!({"tags": {"ring": "canary", "site": "b4"}})
    );
    // A value may hold `=`: the key ends at the first one.
    let eq: Selector = serde_json::from_str(r#"{"tags": ["expr=a=b"]}"#).unwrap();
    assert_eq!(eq.tags, tags(&[("expr", "a=b")]));
}

#[test]
fn malformed_tags_are_refused_with_the_reason() {
    for (json, needle) in [
        (r#"{"tags": ["ring"]}"#, "\"ring\" is not key=value"),
        (r#"{"tags": ["a=1", "a=2"]}"#, "key \"a\" given twice"),
        (r#"{"tags": {"a": "1", "a": "2"}}"#, "key \"a\" given twice"),
        (r#"{"tags": "ring=canary"}"#, "key → value"),
        (r#"{"tags": {"a": 1}}"#, "invalid type"),
        (r#"{"colour": ["red"]}"#, "unknown field"),
    ] {
        let err = serde_json::from_str::<Selector>(json).unwrap_err();
        assert!(err.to_string().contains(needle), "{json}: {err}");
    }
}

#[test]
fn field_names_are_the_contract() {
    let s = Selector {
        manufacturers: strings(&["Acme"]),
        models: strings(&["M1"]),
        versions: strings(&["1.0"]),
        hardware: strings(&["rev2"]),
        tags: tags(&[("ring", "canary")]),
        groups: strings(&["lab"]),
        device_ids: strings(&["IMEI:1"]),
    };
    let json = serde_json::to_value(&s).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "device_ids",
            "groups",
            "hardware",
            "manufacturers",
            "models",
            "tags",
            "versions"
        ]
    );
    assert_eq!(serde_json::to_string(&Selector::default()).unwrap(), "{}");
}

#[test]
fn validation_names_the_field() {
    let too_many = Selector {
        models: (0..=MAX_VALUES).map(|i| format!("m{i}")).collect(),
        ..Selector::default()
    };
    let err = too_many.validate().unwrap_err();
    assert_eq!(err.field, "models");
    assert_eq!(
        err.to_string(),
        format!(
            "selector models: at most {MAX_VALUES} values, got {}",
            MAX_VALUES + 1
        )
    );

    let cases = [
        (
            Selector {
                versions: strings(&[""]),
                ..Selector::default()
            },
            "versions",
            "1 to 256 characters",
        ),
        (
            Selector {
                device_ids: vec!["x".repeat(MAX_VALUE_CHARS + 1)],
                ..Selector::default()
            },
            "device_ids",
            "1 to 256 characters",
        ),
        (
            Selector {
                manufacturers: strings(&["Ac\nme"]),
                ..Selector::default()
            },
            "manufacturers",
            "control character",
        ),
        (
            Selector {
                tags: tags(&[("has space", "x")]),
                ..Selector::default()
            },
            "tags",
            "key \"has space\"",
        ),
        (
            Selector {
                tags: tags(&[("ring", "")]),
                ..Selector::default()
            },
            "tags",
            "value of ring",
        ),
        (
            Selector {
                tags: (0..=MAX_TAGS)
                    .map(|i| (format!("k{i}"), "v".to_owned()))
                    .collect(),
                ..Selector::default()
            },
            "tags",
            "at most 32",
        ),
        (
            Selector {
                groups: strings(&["lab;2"]),
                ..Selector::default()
            },
            "groups",
            "ASCII letters",
        ),
    ];
    for (selector, field, needle) in cases {
        let err = selector.validate().unwrap_err();
        assert_eq!(err.field, field, "{err}");
        assert!(err.to_string().contains(needle), "{err}");
    }
    // At the bounds exactly: valid.
    Selector {
        models: (0..MAX_VALUES).map(|i| format!("m{i}")).collect(),
        device_ids: vec!["é".repeat(MAX_VALUE_CHARS)],
        tags: (0..MAX_TAGS)
            .map(|i| (format!("k{i}"), "v".to_owned()))
            .collect(),
        groups: vec!["g".repeat(MAX_NAME_CHARS)],
        ..Selector::default()
    }
    .validate()
    .unwrap();
}

#[test]
fn the_text_syntax_reads_every_field() {
    let s: Selector = "model=SIM-1,SIM-2 version=1.0 tag.ring=canary group=lab manufacturer=Acme \
                       hw=rev2 id=IMEI:1234"
        .parse()
        .unwrap();
    assert_eq!(
        s,
        Selector {
            manufacturers: strings(&["Acme"]),
            models: strings(&["SIM-1", "SIM-2"]),
            versions: strings(&["1.0"]),
            hardware: strings(&["rev2"]),
            tags: tags(&[("ring", "canary")]),
            groups: strings(&["lab"]),
            device_ids: strings(&["IMEI:1234"]),
        }
    );
    assert_eq!(
        s.to_string(),
        "manufacturer=Acme model=SIM-1,SIM-2 version=1.0 hw=rev2 tag.ring=canary group=lab id=IMEI:1234"
    );
}

#[test]
fn quoted_values_repeated_fields_and_blank_text() {
    let s: Selector = r#"  model="Meter 2","a,b"   model=C tag.site="Bldg \"4\", \\ floor 2"  "#
        .parse()
        .unwrap();
    assert_eq!(s.models, strings(&["Meter 2", "a,b", "C"]));
    assert_eq!(s.tags["site"], r#"Bldg "4", \ floor 2"#);
    assert_eq!(
        s.to_string(),
        r#"model="Meter 2","a,b",C tag.site="Bldg \"4\", \\ floor 2""#
    );
    assert_eq!("".parse::<Selector>().unwrap(), Selector::default());
    assert_eq!(" \t ".parse::<Selector>().unwrap(), Selector::default());
    assert_eq!(Selector::default().to_string(), "");
}

#[test]
fn text_errors_say_where_and_what() {
    for (text, needle) in [
        ("colour=red", "character 1: unknown field `colour`"),
        ("model", "expected `=` after `model`"),
        ("model=", "character 7: empty value"),
        ("model=a,,b", "character 9: empty value"),
        ("model=a, b", "empty value"),
        ("model=a=b", "`=` inside a value: quote the value"),
        ("model=a\"b", "`\"` inside a value"),
        ("model=\"abc", "character 7: unterminated quoted value"),
        ("model=\"a\\nb\"", "unknown escape"),
        (
            "model=\"a\"b",
            "expected `,` or a space after a quoted value",
        ),
        ("tag.ring=a,b", "tag.ring takes one value"),
        (
            "tag.ring=a tag.ring=b",
            "character 12: tag.ring given twice",
        ),
        ("tag.=x", "selector tags: key \"\""),
        ("version=\"\"", "selector versions"),
    ] {
        let err = text.parse::<Selector>().unwrap_err().to_string();
        assert!(err.contains(needle), "{text}: {err}");
    }
}

#[test]
fn matching_follows_and_of_fields_or_of_values() {
    let device_tags = tags(&[("ring", "canary"), ("site", "b4")]);
    let groups = strings(&["lab", "eu"]);
    let facts = DeviceFacts {
        id: "uuid-1",
        dev_id: "IMEI:1",
        manufacturer: Some("Acme"),
        model: Some("M1"),
        fw_version: Some("1.0"),
        hw_version: None,
        tags: &device_tags,
        groups: &groups,
    };
    let yes = [
        "",
        "model=M1",
        "model=M0,M1 version=1.0",
        "manufacturer=Acme",
        "tag.ring=canary tag.site=b4",
        "group=us,eu",
        "id=uuid-1",
        "id=IMEI:1",
        "id=IMEI:9,IMEI:1 model=M1",
    ];
    let no = [
        "model=m1",
        "model=M1 version=2.0",
        "hw=rev2",
        "tag.ring=canary tag.site=b5",
        "tag.other=x",
        "group=us",
        "id=IMEI:2",
        "manufacturer=Acme model=M2",
    ];
    for text in yes {
        let s: Selector = text.parse().unwrap();
        assert!(s.matches(&facts), "{text} should match");
    }
    for text in no {
        let s: Selector = text.parse().unwrap();
        assert!(!s.matches(&facts), "{text} should not match");
    }
}

fn value() -> impl Strategy<Value = String> {
    // Letters and every character the syntax must quote or escape, and a non-ASCII one.
    "[a-zA-Z0-9 ,=\"\\\\.:_é-]{1,12}"
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.:/-]{1,10}"
}

fn selector() -> impl Strategy<Value = Selector> {
    let list = || proptest::collection::vec(value(), 0..4);
    (
        (list(), list(), list(), list()),
        proptest::collection::btree_map(name(), value(), 0..4),
        proptest::collection::vec(name(), 0..4),
        list(),
    )
        .prop_map(
            |((manufacturers, models, versions, hardware), tags, groups, device_ids)| Selector {
                manufacturers,
                models,
                versions,
                hardware,
                tags,
                groups,
                device_ids,
            },
        )
}

proptest! {
    #[test]
    fn text_round_trips(s in selector()) {
        s.validate().unwrap();
        let text = s.to_string();
        let back: Selector = text.parse().map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(back, s);
    }

    #[test]
    fn json_round_trips(s in selector()) {
        let json = serde_json::to_string(&s).unwrap();
        let back: Selector = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, s);
    }

    #[test]
    fn any_text_parses_or_fails_cleanly(text in "[a-z.=, \"\\\\]{0,30}") {
        if let Ok(s) = text.parse::<Selector>() {
            // Whatever parsed is valid and prints to text that parses to itself.
            prop_assert_eq!(s.to_string().parse::<Selector>().unwrap(), s);
        }
    }
}
