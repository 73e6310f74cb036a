//! Which devices an operation or a campaign is about: a selector over manufacturer, model,
//! firmware version, hardware version, tags, static groups and explicit ids.
//!
//! Fields combine with AND; the values of one field with OR; every tag must match. An empty
//! selector selects every device.
//!
//! Pure: the JSON shape, its bounds ([`Selector::validate`]), the text syntax of query strings
//! and the command line (`text.rs`: [`std::str::FromStr`] and [`std::fmt::Display`], which
//! round-trip), the rules of device labels (tag keys and values, group names, shared with
//! provisioning so that a selector can name every label a device may carry), and
//! [`Selector::matches`] for one device's facts. The store turns a selector into SQL with the
//! same meaning.

#[cfg(test)]
mod tests;
mod text;

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

pub use text::ParseError;

/// Most values one field of a selector may list.
pub const MAX_VALUES: usize = 1000;
/// Most tags a selector may require, and a device may carry.
pub const MAX_TAGS: usize = 32;
/// Most static groups a device may belong to.
pub const MAX_GROUPS: usize = 32;
/// Longest manufacturer, model, version, hardware version, device id or tag value, in characters.
pub const MAX_VALUE_CHARS: usize = 256;
/// Longest tag key or group name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// `./DevInfo/Man`, any of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manufacturers: Vec<String>,
    /// `./DevInfo/Mod`, any of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// `./DevDetail/FwV`, any of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// `./DevDetail/HwV`, any of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hardware: Vec<String>,
    /// Every one of these labels, key → value. Also accepted as a list of `"key=value"`
    /// strings; always written as the object.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "tags_object_or_list"
    )]
    pub tags: BTreeMap<String, String>,
    /// Member of any of these static groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Any of these devices, by id or by DevId.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_ids: Vec<String>,
}

/// A selector out of bounds; the message names the field (its JSON name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("selector {field}: {message}")]
pub struct SelectorError {
    pub field: String,
    pub message: String,
}

/// What a selector looks at in one device (see [`Selector::matches`]).
#[derive(Debug, Clone, Copy)]
pub struct DeviceFacts<'a> {
    /// The service's own id of the device.
    pub id: &'a str,
    /// The OMA DM DevId.
    pub dev_id: &'a str,
    pub manufacturer: Option<&'a str>,
    pub model: Option<&'a str>,
    pub fw_version: Option<&'a str>,
    pub hw_version: Option<&'a str>,
    pub tags: &'a BTreeMap<String, String>,
    pub groups: &'a [String],
}

impl Selector {
    /// True when it names nothing, and so selects every device.
    pub fn is_empty(&self) -> bool {
        self == &Selector::default()
    }

    /// Checks the bounds: at most [`MAX_VALUES`] values per field and [`MAX_TAGS`] tags, every
    /// value 1 to [`MAX_VALUE_CHARS`] characters without control characters, tag keys and
    /// group names by [`check_name`].
    pub fn validate(&self) -> Result<(), SelectorError> {
        for (field, values) in [
            ("manufacturers", &self.manufacturers),
            ("models", &self.models),
            ("versions", &self.versions),
            ("hardware", &self.hardware),
            ("device_ids", &self.device_ids),
        ] {
            check_count(field, values.len(), MAX_VALUES)?;
            for value in values {
                check_value(value).map_err(|message| SelectorError {
                    field: field.to_owned(),
                    message,
                })?;
            }
        }
        check_count("groups", self.groups.len(), MAX_VALUES)?;
        for group in &self.groups {
            check_name(group).map_err(|message| SelectorError {
                field: "groups".to_owned(),
                message,
            })?;
        }
        check_count("tags", self.tags.len(), MAX_TAGS)?;
        for (key, value) in &self.tags {
            check_tag(key, value).map_err(|message| SelectorError {
                field: "tags".to_owned(),
                message,
            })?;
        }
        Ok(())
    }

    /// Whether one device is selected. The same rule as the store's SQL: a field's values
    /// compare exactly (case matters) and a device without the fact matches none of them;
    /// `device_ids` match the id or the DevId.
    pub fn matches(&self, device: &DeviceFacts<'_>) -> bool {
        fn any_of(values: &[String], fact: Option<&str>) -> bool {
            values.is_empty() || fact.is_some_and(|f| values.iter().any(|v| v == f))
        }
        any_of(&self.manufacturers, device.manufacturer)
            && any_of(&self.models, device.model)
            && any_of(&self.versions, device.fw_version)
            && any_of(&self.hardware, device.hw_version)
            && self
                .tags
                .iter()
                .all(|(k, v)| device.tags.get(k).is_some_and(|have| have == v))
            && (self.groups.is_empty() || self.groups.iter().any(|g| device.groups.contains(g)))
            && (self.device_ids.is_empty()
                || self
                    .device_ids
                    .iter()
                    .any(|i| i == device.id || i == device.dev_id))
    }
}

fn check_count(field: &str, count: usize, max: usize) -> Result<(), SelectorError> {
    if count > max {
        return Err(SelectorError {
            field: field.to_owned(),
            message: format!("at most {max} values, got {count}"),
        });
    }
    Ok(())
}

/// A manufacturer, model, version, hardware version, device id or tag value: 1 to
/// [`MAX_VALUE_CHARS`] characters, no control characters.
pub fn check_value(value: &str) -> Result<(), String> {
    let chars = value.chars().count();
    if chars == 0 || chars > MAX_VALUE_CHARS {
        return Err(format!(
            "{value:?} must be 1 to {MAX_VALUE_CHARS} characters"
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{value:?} contains a control character"));
    }
    Ok(())
}

/// A tag key or a group name: 1 to [`MAX_NAME_CHARS`] ASCII letters, digits or `_ . : / -`
/// (so that it needs no quoting in the text syntax nor in CSV lists).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '-');
    if name.is_empty() || name.len() > MAX_NAME_CHARS || !name.chars().all(ok) {
        return Err(format!(
            "{name:?} must be 1 to {MAX_NAME_CHARS} ASCII letters, digits or _ . : / -"
        ));
    }
    Ok(())
}

/// One tag: a key by [`check_name`], a value by [`check_value`].
pub fn check_tag(key: &str, value: &str) -> Result<(), String> {
    check_name(key).map_err(|m| format!("key {m}"))?;
    check_value(value).map_err(|m| format!("value of {key}: {m}"))
}

/// `tags` as `{"ring": "canary"}` or `["ring=canary"]`; a key given twice is an error either
/// way (a JSON object's duplicate key would otherwise silently keep the last value).
pub(crate) fn tags_object_or_list<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    struct Tags;

    fn insert<E: de::Error>(
        tags: &mut BTreeMap<String, String>,
        key: String,
        value: String,
    ) -> Result<(), E> {
        if tags.contains_key(&key) {
            return Err(E::custom(format!("tags: key {key:?} given twice")));
        }
        tags.insert(key, value);
        Ok(())
    }

    impl<'de> Visitor<'de> for Tags {
        type Value = BTreeMap<String, String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object of key → value, or a list of \"key=value\" strings")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut tags = BTreeMap::new();
            while let Some((key, value)) = map.next_entry::<String, String>()? {
                insert(&mut tags, key, value)?;
            }
            Ok(tags)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut tags = BTreeMap::new();
            while let Some(item) = seq.next_element::<String>()? {
                let Some((key, value)) = item.split_once('=') else {
                    return Err(de::Error::custom(format!(
                        "tags: {item:?} is not key=value"
                    )));
                };
                insert(&mut tags, key.to_owned(), value.to_owned())?;
            }
            Ok(tags)
        }
    }

    deserializer.deserialize_any(Tags)
}
