//! `/api/v1/devices`: provisioning, inventory, tree snapshot, session log, alerts, Package 0.

use actix_web::{HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};

use crate::access::Role;
use crate::dm::auth::{AuthType, CredentialHash, Nonce};
use crate::dm_edge::{self, notify::NotifyError};
use crate::http::{ApiError, AppState, Caller, ErrorBody};
use crate::store::{
    Device, Inventory, NewDevice, NotificationRecord, SessionLogLine, StoredAlert, auth_type_name,
    parse_auth_type,
};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// `basic`, `md5` or `hmac`.
    #[serde(rename = "type")]
    pub auth_type: String,
    /// The AAuthName (client) or ServerID (server).
    pub name: String,
    /// Stored only as `B64(MD5(name:secret))`.
    pub secret: String,
    /// The initial nonce of this credential as the device's bootstrap set it, base64; `""`
    /// is the empty nonce (libdmclient's accounts start with it). Omit it when unknown: the
    /// device's first credential is then challenged (client), or our first credentials use
    /// the resynchronisation default until the device re-seeds it (server). md5 and hmac only.
    pub nonce: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDevice {
    /// The OMA DM DevId, e.g. `IMEI:490154203237518`.
    pub dev_id: String,
    pub msisdn: Option<String>,
    /// How the device authenticates to us.
    pub client: Credentials,
    /// How we authenticate to the device (`md5` or `hmac`), also keying Package 0.
    pub server: Credentials,
    /// Direct Package 0 push target: `http://…` or `udp://host:port`.
    pub push_url: Option<String>,
    /// The device's DM client does not follow RespURI (default false). Later messages of its
    /// sessions are then accepted without the per-session token that RespURI carries; keep it
    /// false for every client that follows RespURI, as the specification requires.
    #[serde(default)]
    pub ignores_resp_uri: bool,
}

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
pub struct ListQuery {
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

fn check_text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "{field} must be 1 to {max} printable characters"
        )));
    }
    Ok(())
}

fn auth_type(field: &str, value: &str) -> Result<AuthType, ApiError> {
    parse_auth_type(value)
        .ok_or_else(|| ApiError::BadRequest(format!("{field} must be basic, md5 or hmac")))
}

/// A provisioned initial nonce: base64 (empty allowed), decoded at most 64 bytes, and only for
/// schemes that use one.
fn initial_nonce(
    field: &str,
    auth: AuthType,
    value: Option<String>,
) -> Result<Option<String>, ApiError> {
    let Some(text) = value else {
        return Ok(None);
    };
    if !auth.uses_nonce() {
        return Err(ApiError::BadRequest(format!(
            "{field} applies to md5 and hmac only: basic has no nonce"
        )));
    }
    let too_long = text.trim().len() > 88; // 64 bytes in base64, checked before decoding
    match Nonce::from_b64(&text) {
        Ok(n) if !too_long && n.0.len() <= 64 => Ok(Some(n.to_b64())),
        Ok(_) => Err(ApiError::BadRequest(format!(
            "{field} must decode to at most 64 bytes"
        ))),
        Err(_) => Err(ApiError::BadRequest(format!(
            "{field} must be standard base64 with padding (\"\" for the empty nonce)"
        ))),
    }
}

pub(super) async fn load_device(state: &AppState, id: &str) -> Result<Device, ApiError> {
    state
        .store
        .devices()
        .get(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no device with id {id}")))
}

/// Provisions a device with its DM credentials.
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
    let b = body.into_inner();
    check_text("dev_id", &b.dev_id, 256)?;
    check_text("client.name", &b.client.name, 256)?;
    check_text("client.secret", &b.client.secret, 256)?;
    check_text("server.name", &b.server.name, 255)?;
    check_text("server.secret", &b.server.secret, 256)?;
    if !b.server.name.is_ascii() {
        return Err(ApiError::BadRequest(
            "server.name (the ServerID) must be ASCII".into(),
        ));
    }
    let client_auth = auth_type("client.type", &b.client.auth_type)?;
    let server_auth = auth_type("server.type", &b.server.auth_type)?;
    let client_nonce = initial_nonce("client.nonce", client_auth, b.client.nonce)?;
    let server_nonce = initial_nonce("server.nonce", server_auth, b.server.nonce)?;
    if !dm_edge::server_auth_supported(server_auth) {
        return Err(ApiError::BadRequest(
            "server.type must be md5 or hmac: basic would need the server secret stored in clear"
                .into(),
        ));
    }
    if let Some(url) = &b.push_url
        && !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with("udp://"))
    {
        return Err(ApiError::BadRequest(
            "push_url must be http://, https:// or udp://".into(),
        ));
    }
    let new = NewDevice {
        dev_id: b.dev_id.trim().to_owned(),
        msisdn: b.msisdn,
        client_auth_type: client_auth,
        client_secret_hash: CredentialHash::compute(&b.client.name, &b.client.secret).0,
        client_nonce,
        client_name: b.client.name,
        server_auth_type: server_auth,
        server_secret_hash: CredentialHash::compute(&b.server.name, &b.server.secret).0,
        server_secret_sealed: None,
        server_nonce,
        server_name: b.server.name,
        push_url: b.push_url,
        ignores_resp_uri: b.ignores_resp_uri,
    };
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

/// Devices ordered by DevId, a page at a time.
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices", security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, description = "a page of devices", body = DevicePage)))]
#[get("/api/v1/devices")]
pub async fn list_devices(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 500".into(),
        ));
    }
    let devices = state
        .store
        .devices()
        .list(query.after.as_deref(), limit)
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
