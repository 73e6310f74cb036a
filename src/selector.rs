//! Which devices an operation or a campaign is about: a selector over manufacturer, model,
//! firmware version, hardware version, tags, static groups and explicit ids.
//!
//! Fields combine with AND; the values of one field with OR; every tag must match. An empty
//! selector selects every device.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
    /// Every one of these labels, key → value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Member of any of these static groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Any of these devices, by id or by DevId.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_ids: Vec<String>,
}
