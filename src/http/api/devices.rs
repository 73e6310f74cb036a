//! `/api/v1/devices`: provisioning, inventory, tree snapshot, session log, alerts, Package 0.

use actix_web::{HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::access::Role;
use crate::devices::provision::CreateDevice;
use crate::dm_edge::notify::NotifyError;
use crate::http::{ApiError, AppState, Caller, ErrorBody};
use crate::selector::Selector;
use crate::store::{
    Device, Inventory, NotificationRecord, SessionLogLine, StoredAlert, auth_type_name,
};

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeviceView {
    pub id: String,
    pub dev_id: String,
    pub msisdn: Option<String>,
    pub client_auth: String,
    pub client_name: String,
    pub server_auth: String,
    pub server_id: String,
    pub push_url: Option<String>,
    pub ignores_resp_uri: bool,
    pub inventory: Inventory,
    /// Key=value labels.
    pub tags: BTreeMap<String, String>,
    /// Static groups.
    pub groups: Vec<String>,
    /// IANA time zone name.
    pub timezone: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_seen_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<Device> for DeviceView {
    fn from(d: Device) -> Self {
        DeviceView {
            id: d.id,
            dev_id: d.dev_id,
            msisdn: d.msisdn,
            client_auth: auth_type_name(d.client_auth_type).into(),
            client_name: d.client_name,
            server_auth: auth_type_name(d.server_auth_type).into(),
            server_id: d.server_name,
            push_url: d.push_url,
            ignores_resp_uri: d.ignores_resp_uri,
            inventory: d.inventory,
            tags: d.tags,
            groups: d.groups,
            timezone: d.timezone,
            created_at: d.created_at,
            last_seen_at: d.last_seen_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TreeNodeView {
    pub uri: String,
    pub value: String,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only the devices this selector selects, in the text syntax (see the README, "Selecting
    /// devices"), e.g. `model=M1,M2 version=1.0 tag.ring=canary group=lab`.
    pub selector: Option<String>,
    /// Return devices whose DevId sorts after this one (pagination cursor).
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DevicePage {
    pub devices: Vec<DeviceView>,
    /// Pass as `after` for the next page; absent on the last one.
    pub next: Option<String>,
}

pub(super) async fn load_device(state: &AppState, id: &str) -> Result<Device, ApiError> {
    state
        .store
        .devices()
        .get(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no device with id {id}")))
}

/// Provisions a device with its DM credentials, and optionally its labels (tags, groups, time
/// zone) and the inventory the factory recorded.
#[utoipa::path(post, path = "/api/v1/devices", tag = "devices", security(("bearer" = [])),
    request_body = CreateDevice,
    responses(
        (status = 201, description = "provisioned", body = DeviceView),
        (status = 400, description = "invalid request", body = ErrorBody),
        (status = 409, description = "DevId taken", body = ErrorBody),
    ))]
#[post("/api/v1/devices")]
pub async fn create_device(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<CreateDevice>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let new = body
        .into_inner()
        .into_new_device()
        .map_err(ApiError::BadRequest)?;
    let device = state
        .store
        .devices()
        .create(new, chrono::Utc::now())
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => {
                ApiError::Conflict("a device with this dev_id exists".into())
            }
            other => other.into(),
        })?;
    tracing::info!(device.id = %device.id, device.dev_id = %device.dev_id, "device provisioned");
    Ok(HttpResponse::Created().json(DeviceView::from(device)))
}

/// Devices ordered by DevId, a page at a time, all of them or those a selector selects.
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices", security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "a page of devices", body = DevicePage),
        (status = 400, description = "bad selector or page size", body = ErrorBody),
    ))]
#[get("/api/v1/devices")]
pub async fn list_devices(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let limit = super::firmware::page_limit(query.limit)?;
    let selector: Selector = match &query.selector {
        Some(text) => text
            .parse()
            .map_err(|e: crate::selector::ParseError| ApiError::BadRequest(e.to_string()))?,
        None => Selector::default(),
    };
    let devices = state
        .store
        .devices()
        .select(&selector, query.after.as_deref(), limit)
        .await?;
    let next = (devices.len() as u64 == limit)
        .then(|| devices.last().map(|d| d.dev_id.clone()))
        .flatten();
    Ok(HttpResponse::Ok().json(DevicePage {
        devices: devices.into_iter().map(Into::into).collect(),
        next,
    }))
}

/// One device with its inventory.
#[utoipa::path(get, path = "/api/v1/devices/{id}", tag = "devices", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = DeviceView), (status = 404, body = ErrorBody)))]
#[get("/api/v1/devices/{id}")]
pub async fn get_device(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(HttpResponse::Ok().json(DeviceView::from(load_device(&state, &id).await?)))
}

/// Removes a device and everything recorded about it.
#[utoipa::path(delete, path = "/api/v1/devices/{id}", tag = "devices", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
#[delete("/api/v1/devices/{id}")]
pub async fn delete_device(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    state
        .store
        .devices()
        .delete(&id)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => {
                ApiError::NotFound(format!("no device with id {id}"))
            }
            other => other.into(),
        })?;
    Ok(HttpResponse::NoContent().finish())
}

/// The last known value of every DM tree leaf the device reported.
#[utoipa::path(get, path = "/api/v1/devices/{id}/tree", tag = "devices", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = [TreeNodeView]), (status = 404, body = ErrorBody)))]
#[get("/api/v1/devices/{id}/tree")]
pub async fn device_tree(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let device = load_device(&state, &id).await?;
    let nodes: Vec<TreeNodeView> = state
        .store
        .devices()
        .tree(&device.id)
        .await?
        .into_iter()
        .map(|n| TreeNodeView {
            uri: n.uri,
            value: n.value,
            updated_at: n.updated_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(nodes))
}

/// The device's DM sessions, newest first.
#[utoipa::path(get, path = "/api/v1/devices/{id}/sessions", tag = "devices", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = [SessionLogLine]), (status = 404, body = ErrorBody)))]
#[get("/api/v1/devices/{id}/sessions")]
pub async fn device_sessions(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let device = load_device(&state, &id).await?;
    Ok(HttpResponse::Ok().json(state.store.sessions().log(&device.id, 200).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct AlertQuery {
    /// Only alerts carrying this Correlator (the Exec that asked for the report).
    pub correlator: Option<String>,
}

/// Alerts the device sent (Generic Alert 1226 and others), newest first.
#[utoipa::path(get, path = "/api/v1/devices/{id}/alerts", tag = "devices", security(("bearer" = [])),
    params(("id" = String, Path), AlertQuery),
    responses((status = 200, body = [StoredAlert]), (status = 404, body = ErrorBody)))]
#[get("/api/v1/devices/{id}/alerts")]
pub async fn device_alerts(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<AlertQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let device = load_device(&state, &id).await?;
    let alerts = state
        .store
        .alerts()
        .for_device(&device.id, query.correlator.as_deref(), 500)
        .await?;
    Ok(HttpResponse::Ok().json(alerts))
}

/// Sends a Package 0 so that the device opens a server-initiated session; resent until it does.
#[utoipa::path(post, path = "/api/v1/devices/{id}/notify", tag = "devices", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 202, description = "notification queued and first attempt made", body = NotificationRecord),
        (status = 404, body = ErrorBody),
        (status = 409, description = "no transport for this device", body = ErrorBody),
    ))]
#[post("/api/v1/devices/{id}/notify")]
pub async fn notify_device(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let device = load_device(&state, &id).await?;
    let record = state
        .notifier
        .notify(&device, chrono::Utc::now())
        .await
        .map_err(|e| match e {
            NotifyError::NoTransport => ApiError::Conflict(e.to_string()),
            NotifyError::Store(s) => s.into(),
        })?;
    Ok(HttpResponse::Accepted().json(record))
}
