//! Device labels through the API: `PATCH /api/v1/devices/{id}` replaces a device's tags,
//! groups or time zone; `POST /api/v1/devices/tags` adds and removes tags on every device a
//! selector selects.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, patch, post, web};
use serde::{Deserialize, Deserializer, Serialize};

use super::devices::DeviceView;
use crate::access::Role;
use crate::devices::labels::{check_groups, check_tags, check_timezone};
use crate::http::{ApiError, AppState, Caller, ErrorBody};
use crate::selector::{MAX_TAGS, Selector, check_name};
use crate::store::{BulkTagOutcome, StoreError};

/// Present-and-null apart from absent: `Some(None)` for `null`, `None` when the field is missing
/// (with `#[serde(default)]`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchDevice {
    /// Replaces every tag (`{}` removes them all), as `{"ring": "canary"}` or
    /// `["ring=canary"]`; absent: unchanged.
    #[serde(default, deserialize_with = "tags_patch")]
    #[schema(value_type = BTreeMap<String, String>)]
    pub tags: Option<BTreeMap<String, String>>,
    /// Replaces every group (`[]` removes them all); absent: unchanged.
    #[serde(default, deserialize_with = "groups_patch")]
    #[schema(value_type = Vec<String>)]
    pub groups: Option<Vec<String>>,
    /// IANA time zone name; `null` clears it; absent: unchanged.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub timezone: Option<Option<String>>,
}

/// A list of groups, never `null` (which would read as "clear" or "unchanged" alike).
fn groups_patch<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    Vec::<String>::deserialize(d).map(Some)
}

fn tags_patch<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    crate::selector::tags_object_or_list(d).map(Some)
}

/// Replaces a device's tags, groups or time zone (each optional), in one transaction.
#[utoipa::path(patch, path = "/api/v1/devices/{id}", tag = "devices", security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body = PatchDevice,
    responses(
        (status = 200, description = "the device with its new labels", body = DeviceView),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
#[patch("/api/v1/devices/{id}")]
pub async fn patch_device(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<PatchDevice>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let b = body.into_inner();
    if let Some(tags) = &b.tags {
        check_tags(tags).map_err(ApiError::BadRequest)?;
    }
    if let Some(groups) = &b.groups {
        check_groups(groups).map_err(ApiError::BadRequest)?;
    }
    let timezone = match &b.timezone {
        Some(Some(name)) => Some(Some(check_timezone(name).map_err(ApiError::BadRequest)?)),
        Some(None) => Some(None),
        None => None,
    };
    let device = state
        .store
        .devices()
        .set_labels(
            &id,
            b.tags.as_ref(),
            b.groups.as_deref(),
            timezone.as_ref().map(Option::as_deref),
            chrono::Utc::now(),
        )
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound(format!("no device with id {id}")),
            other => other.into(),
        })?;
    tracing::info!(device.id = %device.id, "device labels changed");
    Ok(HttpResponse::Ok().json(DeviceView::from(device)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkTags {
    /// The devices to change (the JSON shape; `{}` is every device).
    pub selector: Selector,
    /// Tags to set (added, or their value replaced), at most 32.
    #[serde(default, deserialize_with = "crate::selector::tags_object_or_list")]
    #[schema(value_type = BTreeMap<String, String>)]
    pub add: BTreeMap<String, String>,
    /// Tag keys to remove, at most 32.
    #[serde(default)]
    pub remove: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BulkTagsResult {
    /// Devices the selector selected.
    pub matched: u64,
    /// Of those, the devices whose tags changed.
    pub changed: u64,
}

/// Adds and removes tags on every device a selector selects, in one transaction.
#[utoipa::path(post, path = "/api/v1/devices/tags", tag = "devices", security(("bearer" = [])),
    request_body = BulkTags,
    responses(
        (status = 200, description = "applied", body = BulkTagsResult),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, description = "too many devices selected (`too_many_devices`) or a device would carry more than 32 tags (`too_many_tags`); nothing changed", body = ErrorBody),
    ))]
#[post("/api/v1/devices/tags")]
pub async fn bulk_tags(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<BulkTags>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let b = body.into_inner();
    b.selector
        .validate()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if b.add.is_empty() && b.remove.is_empty() {
        return Err(ApiError::BadRequest(
            "add or remove must name at least one tag".into(),
        ));
    }
    check_tags(&b.add).map_err(|m| ApiError::BadRequest(format!("add: {m}")))?;
    if b.remove.len() > MAX_TAGS {
        return Err(ApiError::BadRequest(format!(
            "remove: at most {MAX_TAGS} keys, got {}",
            b.remove.len()
        )));
    }
    for key in &b.remove {
        check_name(key).map_err(|m| ApiError::BadRequest(format!("remove: key {m}")))?;
        if b.add.contains_key(key) {
            return Err(ApiError::BadRequest(format!(
                "remove: {key:?} is also in add"
            )));
        }
    }
    let limit = state.config.devices.bulk_tag_max_devices;
    let outcome = state
        .store
        .devices()
        .bulk_tags(&b.selector, &b.add, &b.remove, limit, chrono::Utc::now())
        .await?;
    match outcome {
        BulkTagOutcome::Applied { matched, changed } => {
            tracing::info!(
                devices.matched = matched,
                devices.changed = changed,
                "bulk tag change"
            );
            Ok(HttpResponse::Ok().json(BulkTagsResult { matched, changed }))
        }
        BulkTagOutcome::TooManyDevices { matched, limit } => Err(ApiError::Unprocessable {
            code: "too_many_devices",
            message: format!(
                "the selector selects {matched} devices, more than the {limit} one change may \
                 touch (devices.bulk_tag_max_devices); nothing changed"
            ),
        }),
        BulkTagOutcome::TooManyTags { devices } => Err(ApiError::Unprocessable {
            code: "too_many_tags",
            message: format!(
                "{devices} device(s) would carry more than {MAX_TAGS} tags; nothing changed"
            ),
        }),
    }
}
