//! `/api/v1/firmware`: streamed image upload, listing, lookup and deletion.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::access::Role;
use crate::firmware::{self, FirmwareMeta, IntakeError};
use crate::http::{ApiError, AppState, Caller, ErrorBody};
use crate::store::{Firmware, FirmwareFilter, StoreError};

/// Header with the image's expected sha256, checked while the upload streams.
pub const CHECKSUM_HEADER: &str = "x-checksum-sha256";

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// DevInfo `Man` of the devices this image is for.
    pub manufacturer: String,
    /// DevInfo `Mod`.
    pub model: String,
    pub version: String,
    /// Free-form hardware constraint, e.g. `rev>=C`.
    pub hardware: Option<String>,
    /// Release notes.
    pub notes: Option<String>,
    /// Anti-rollback security version signed into every package built for this firmware
    /// (0 to 4294967295, default 0); devices refuse a package below the version they run.
    pub security_version: Option<u64>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FirmwareListQuery {
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub version: Option<String>,
    /// Return firmware with an id above this one (pagination cursor).
    pub after: Option<i64>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FirmwarePage {
    pub firmware: Vec<Firmware>,
    /// Pass as `after` for the next page; absent on the last one.
    pub next: Option<i64>,
}

pub(super) fn page_limit(limit: Option<u64>) -> Result<u64, ApiError> {
    let limit = limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 500".into(),
        ));
    }
    Ok(limit)
}

fn intake_error(err: IntakeError) -> ApiError {
    match err {
        IntakeError::Invalid(m) => ApiError::BadRequest(m),
        IntakeError::Conflict(m) => ApiError::Conflict(m),
        IntakeError::Blob(e) => e.into(),
        IntakeError::Store(e) => e.into(),
    }
}

/// Uploads a firmware image: the raw bytes as the body, metadata as query parameters.
/// The same image again under the same identity answers 200 with the existing record.
#[utoipa::path(post, path = "/api/v1/firmware", tag = "firmware", security(("bearer" = [])),
    params(UploadQuery, ("x-checksum-sha256" = Option<String>, Header, description = "expected sha256 of the image")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "stored", body = Firmware),
        (status = 200, description = "the same image was already stored", body = Firmware),
        (status = 400, body = ErrorBody),
        (status = 409, description = "this identity exists with other bytes", body = ErrorBody),
        (status = 413, body = ErrorBody),
    ))]
#[post("/api/v1/firmware")]
pub async fn upload_firmware(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<UploadQuery>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let expected = match req.headers().get(CHECKSUM_HEADER) {
        Some(v) => {
            Some(firmware::parse_sha256(v.to_str().unwrap_or_default()).map_err(intake_error)?)
        }
        None => None,
    };
    let limit = state.config.firmware.max_bytes;
    if let Some(length) = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && length > limit
    {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let query = query.into_inner();
    let meta = FirmwareMeta {
        manufacturer: query.manufacturer,
        model: query.model,
        version: query.version,
        hardware: query.hardware,
        notes: query.notes,
        security_version: match query.security_version {
            Some(v) if v > u64::from(u32::MAX) => {
                return Err(ApiError::BadRequest(
                    "security_version must be 0 to 4294967295".into(),
                ));
            }
            v => v.unwrap_or(0),
        },
    };
    let body = body.map(|chunk| chunk.map_err(std::io::Error::other));
    let (record, created) =
        firmware::intake(&state.store, &state.blobs, meta, body, expected, limit)
            .await
            .map_err(intake_error)?;
    Ok(if created {
        HttpResponse::Created().json(record)
    } else {
        HttpResponse::Ok().json(record)
    })
}

/// Firmware in upload order, filtered, a page at a time.
#[utoipa::path(get, path = "/api/v1/firmware", tag = "firmware", security(("bearer" = [])),
    params(FirmwareListQuery),
    responses((status = 200, body = FirmwarePage), (status = 400, body = ErrorBody)))]
#[get("/api/v1/firmware")]
pub async fn list_firmware(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<FirmwareListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let limit = page_limit(query.limit)?;
    let query = query.into_inner();
    let filter = FirmwareFilter {
        manufacturer: query.manufacturer,
        model: query.model,
        version: query.version,
    };
    let firmware = state
        .store
        .firmware()
        .list(&filter, query.after, limit)
        .await?;
    let next = (firmware.len() as u64 == limit)
        .then(|| firmware.last().map(|f| f.id))
        .flatten();
    Ok(HttpResponse::Ok().json(FirmwarePage { firmware, next }))
}

/// One firmware record.
#[utoipa::path(get, path = "/api/v1/firmware/{id}", tag = "firmware", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Firmware), (status = 404, body = ErrorBody)))]
#[get("/api/v1/firmware/{id}")]
pub async fn get_firmware(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let record = state
        .store
        .firmware()
        .get(*id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no firmware {id}")))?;
    Ok(HttpResponse::Ok().json(record))
}

/// Deletes a firmware and its image; refused (409) while a package or build job uses it.
#[utoipa::path(delete, path = "/api/v1/firmware/{id}", tag = "firmware", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[delete("/api/v1/firmware/{id}")]
pub async fn delete_firmware(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    match firmware::delete(&state.store, &state.blobs, *id).await {
        Ok(_) => Ok(HttpResponse::NoContent().finish()),
        Err(StoreError::NotFound) => Err(ApiError::NotFound(format!("no firmware {id}"))),
        Err(StoreError::InUse(why)) => Err(ApiError::Conflict(why)),
        Err(other) => Err(other.into()),
    }
}
