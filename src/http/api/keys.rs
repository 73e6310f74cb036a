//! `/api/v1/keys`: package-signing keys. Generate (rotate), list, retire, import a public key.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};

use crate::access::Role;
use crate::http::{ApiError, AppState, Caller, ErrorBody};
use crate::keys::{self, KeysError};
use crate::package::PublicKey;
use crate::store::{KeyOrigin, KeyState, SigningKeyRecord, StoreError};

#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyView {
    /// Key id: first 8 bytes of sha256(public key), hex.
    pub id: String,
    /// The public key file's text: `updraft-ed25519-public <64 hex>`.
    pub public_key: String,
    pub state: KeyState,
    pub origin: KeyOrigin,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub retired_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<SigningKeyRecord> for KeyView {
    fn from(r: SigningKeyRecord) -> Self {
        let public_key = keys::public_from_hex(&r.public_key)
            .map(|k| k.to_file_text().trim_end().to_owned())
            .unwrap_or(r.public_key);
        KeyView {
            id: r.id,
            public_key,
            state: r.state,
            origin: r.origin,
            created_at: r.created_at,
            retired_at: r.retired_at,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportKey {
    /// A public key file's text (`updraft-ed25519-public <64 hex>`), e.g. release CI's
    /// `KEY.pub` from `updraft package keygen`.
    pub public_key: String,
}

fn keys_error(err: KeysError) -> ApiError {
    match err {
        KeysError::Store(e) => e.into(),
        other => ApiError::internal(other),
    }
}

/// Generates a key; it signs new builds from now on, and the previously active key stays
/// valid for verification until retired.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", security(("bearer" = [])),
    responses((status = 201, body = KeyView), (status = 403, body = ErrorBody)))]
#[post("/api/v1/keys")]
pub async fn create_key(
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let record = keys::rotate(&state.store, &state.keys, chrono::Utc::now())
        .await
        .map_err(keys_error)?;
    tracing::info!(key.id = record.id, "signing key generated and activated");
    Ok(HttpResponse::Created().json(KeyView::from(record)))
}

/// Every registered key (public halves only).
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", security(("bearer" = [])),
    responses((status = 200, body = [KeyView])))]
#[get("/api/v1/keys")]
pub async fn list_keys(
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let keys: Vec<KeyView> = state
        .store
        .signing_keys()
        .list()
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(keys))
}

/// Registers a public key for verifying uploaded packages (it never signs here).
#[utoipa::path(post, path = "/api/v1/keys/import", tag = "keys", security(("bearer" = [])),
    request_body = ImportKey,
    responses(
        (status = 201, body = KeyView),
        (status = 200, description = "already registered", body = KeyView),
        (status = 400, body = ErrorBody),
        (status = 409, description = "the key was retired", body = ErrorBody),
    ))]
#[post("/api/v1/keys/import")]
pub async fn import_key(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<ImportKey>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let public = PublicKey::from_file_text(body.public_key.trim())
        .map_err(|e| ApiError::BadRequest(format!("public_key: {e}")))?;
    let id = public.id().to_string();
    let (record, created) = state
        .store
        .signing_keys()
        .import(&id, &hex::encode(public.to_bytes()), chrono::Utc::now())
        .await
        .map_err(|e| match e {
            StoreError::Conflict(why) => ApiError::Conflict(why),
            other => other.into(),
        })?;
    Ok(if created {
        HttpResponse::Created().json(KeyView::from(record))
    } else {
        HttpResponse::Ok().json(KeyView::from(record))
    })
}

/// Retires a key: packages signed with it are refused from now on. Retiring the active
/// key leaves no signing key until a new one is generated.
#[utoipa::path(post, path = "/api/v1/keys/{id}/retire", tag = "keys", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = KeyView), (status = 404, body = ErrorBody)))]
#[post("/api/v1/keys/{id}/retire")]
pub async fn retire_key(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let record = state
        .store
        .signing_keys()
        .retire(&id, chrono::Utc::now())
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound(format!("no key {id}")),
            other => other.into(),
        })?;
    tracing::info!(key.id = record.id, "signing key retired");
    Ok(HttpResponse::Ok().json(KeyView::from(record)))
}
