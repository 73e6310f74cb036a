//! `/api/v1/packages`: build requests and their jobs, packages (built or uploaded), downloads.

use std::cell::RefCell;
use std::rc::Rc;

use actix_web::body::SizedStream;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::access::Role;
use crate::blob::{BlobError, BlobKey, PutOptions};
use crate::builds::upload::{CheckedStream, PACKAGE_PREFIX, PackageCheck, new_package};
use crate::builds::{self, FORMATS};
use crate::http::{ApiError, AppState, Caller, ErrorBody};
use crate::keys;
use crate::package::PackageError;
use crate::store::{
    BuildJob, JobState, NewJob, PackageFilter, PackageKind, PackageOrigin, PackageRecord,
};

use super::firmware::page_limit;

const MAX_SOURCES: usize = 100;

#[derive(Serialize, utoipa::ToSchema)]
pub struct PackageView {
    pub id: i64,
    pub kind: PackageKind,
    pub origin: PackageOrigin,
    /// The firmware whose image the package produces, when it is registered here.
    pub target_firmware_id: Option<i64>,
    /// For a delta: the firmware it applies to, when registered here.
    pub source_firmware_id: Option<i64>,
    pub manufacturer: String,
    pub model: String,
    pub target_version: String,
    pub target_sha256: String,
    pub source_version: Option<String>,
    pub source_sha256: Option<String>,
    /// Payload encoding, e.g. `full+xz` or `bsdiff-split+xz`.
    pub encoding: String,
    /// Size of the package file in bytes.
    pub size: u64,
    /// sha256 of the package file.
    pub sha256: String,
    pub key_id: String,
    /// The build job that made it (built packages).
    pub job_id: Option<i64>,
    /// The signed manifest.
    #[schema(value_type = Object)]
    pub manifest: serde_json::Value,
    pub download_url: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<PackageRecord> for PackageView {
    fn from(r: PackageRecord) -> Self {
        PackageView {
            download_url: format!("/api/v1/packages/{}/download", r.id),
            id: r.id,
            kind: r.kind,
            origin: r.origin,
            target_firmware_id: r.target_firmware_id,
            source_firmware_id: r.source_firmware_id,
            manufacturer: r.manufacturer,
            model: r.model,
            target_version: r.target_version,
            target_sha256: r.target_sha256,
            source_version: r.source_version,
            source_sha256: r.source_sha256,
            encoding: r.encoding,
            size: r.size,
            sha256: r.sha256,
            key_id: r.key_id,
            job_id: r.job_id,
            manifest: r.manifest,
            created_at: r.created_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BuildJobView {
    pub id: i64,
    pub target_firmware_id: i64,
    /// `null` for the full-image build.
    pub source_firmware_id: Option<i64>,
    pub target_sha256: String,
    pub source_sha256: Option<String>,
    /// `xz` or `zstd`.
    pub format: String,
    pub state: JobState,
    /// Attempts so far (a claim by a worker counts as one).
    pub attempts: u32,
    /// 0 to 100.
    pub progress: u8,
    /// The last attempt's error.
    pub error: Option<String>,
    /// A note on the result, e.g. why a delta was not kept.
    pub outcome: Option<String>,
    /// When a queued retry is due.
    pub next_attempt_at: chrono::DateTime<chrono::Utc>,
    pub full_package_id: Option<i64>,
    pub delta_package_id: Option<i64>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<BuildJob> for BuildJobView {
    fn from(j: BuildJob) -> Self {
        BuildJobView {
            id: j.id,
            target_firmware_id: j.target_firmware_id,
            source_firmware_id: j.source_firmware_id,
            target_sha256: j.target_sha256,
            source_sha256: j.source_sha256,
            format: j.format,
            state: j.state,
            attempts: j.attempts,
            progress: j.progress,
            error: j.error,
            outcome: j.outcome,
            next_attempt_at: j.next_attempt_at,
            full_package_id: j.full_package_id,
            delta_package_id: j.delta_package_id,
            created_at: j.created_at,
            updated_at: j.updated_at,
            finished_at: j.finished_at,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestBuilds {
    /// The firmware to update to.
    pub target_firmware_id: i64,
    /// Firmware to build deltas from (same manufacturer and model).
    #[serde(default)]
    pub source_firmware_ids: Vec<i64>,
    /// `xz` (default) or `zstd`.
    pub format: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BuildJobs {
    /// The full-image build first, then one delta build per source.
    pub jobs: Vec<BuildJobView>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct JobListQuery {
    /// Only jobs in this state (`queued`, `running`, `succeeded`, `failed`).
    pub state: Option<String>,
    pub after: Option<i64>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<u64>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PackageListQuery {
    pub target_firmware_id: Option<i64>,
    pub model: Option<String>,
    pub after: Option<i64>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PackagePage {
    pub packages: Vec<PackageView>,
    pub next: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BuildJobPage {
    pub jobs: Vec<BuildJobView>,
    pub next: Option<i64>,
}

/// Queues the builds for a target: its full-image package and a delta from each source.
/// Idempotent: the same (source, target, format) returns its existing job (a failed one
/// is queued again).
#[utoipa::path(post, path = "/api/v1/packages/builds", tag = "packages", security(("bearer" = [])),
    request_body = RequestBuilds,
    responses((status = 202, body = BuildJobs), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[post("/api/v1/packages/builds")]
pub async fn request_builds(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<RequestBuilds>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let body = body.into_inner();
    let format = body.format.unwrap_or_else(|| "xz".to_owned());
    if builds::format_encodings(&format).is_none() {
        return Err(ApiError::BadRequest(format!(
            "format {format:?}: expected one of {}",
            FORMATS.join(", ")
        )));
    }
    if body.source_firmware_ids.len() > MAX_SOURCES {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_SOURCES} sources per request"
        )));
    }
    let firmware = state.store.firmware();
    let target = firmware
        .get(body.target_firmware_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no firmware {}", body.target_firmware_id)))?;
    // Check every source before queueing anything: a refused request queues nothing.
    let mut sources = Vec::new();
    for id in &body.source_firmware_ids {
        let source = firmware
            .get(*id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no firmware {id}")))?;
        if source.manufacturer != target.manufacturer || source.model != target.model {
            return Err(ApiError::BadRequest(format!(
                "firmware {id} is for {} {}, the target is for {} {}",
                source.manufacturer, source.model, target.manufacturer, target.model
            )));
        }
        if source.sha256 == target.sha256 {
            return Err(ApiError::BadRequest(format!(
                "firmware {id} is the target image itself"
            )));
        }
        if !sources
            .iter()
            .any(|s: &crate::store::Firmware| s.sha256 == source.sha256)
        {
            sources.push(source);
        }
    }
    let now = chrono::Utc::now();
    let packages = state.store.packages();
    let mut jobs = Vec::new();
    let full = NewJob {
        target_firmware_id: target.id,
        source_firmware_id: None,
        target_sha256: target.sha256.clone(),
        source_sha256: None,
        format: format.clone(),
    };
    jobs.push(packages.enqueue(full, now).await?.0.into());
    for source in sources {
        let delta = NewJob {
            target_firmware_id: target.id,
            source_firmware_id: Some(source.id),
            target_sha256: target.sha256.clone(),
            source_sha256: Some(source.sha256.clone()),
            format: format.clone(),
        };
        jobs.push(packages.enqueue(delta, now).await?.0.into());
    }
    Ok(HttpResponse::Accepted().json(BuildJobs { jobs }))
}

/// Build jobs in id order, a page at a time.
#[utoipa::path(get, path = "/api/v1/packages/builds", tag = "packages", security(("bearer" = [])),
    params(JobListQuery),
    responses((status = 200, body = BuildJobPage), (status = 400, body = ErrorBody)))]
#[get("/api/v1/packages/builds")]
pub async fn list_builds(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<JobListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let limit = page_limit(query.limit)?;
    let filter = match query.state.as_deref() {
        None => None,
        Some("queued") => Some(JobState::Queued),
        Some("running") => Some(JobState::Running),
        Some("succeeded") => Some(JobState::Succeeded),
        Some("failed") => Some(JobState::Failed),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "state {other:?}: expected queued, running, succeeded or failed"
            )));
        }
    };
    let jobs = state
        .store
        .packages()
        .jobs(filter, query.after, limit)
        .await?;
    let next = (jobs.len() as u64 == limit)
        .then(|| jobs.last().map(|j| j.id))
        .flatten();
    Ok(HttpResponse::Ok().json(BuildJobPage {
        jobs: jobs.into_iter().map(Into::into).collect(),
        next,
    }))
}

/// One build job with its progress, last error and packages.
#[utoipa::path(get, path = "/api/v1/packages/builds/{id}", tag = "packages", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = BuildJobView), (status = 404, body = ErrorBody)))]
#[get("/api/v1/packages/builds/{id}")]
pub async fn get_build(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let job = state
        .store
        .packages()
        .job(*id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no build job {id}")))?;
    Ok(HttpResponse::Ok().json(BuildJobView::from(job)))
}

/// Packages in id order, filtered, a page at a time.
#[utoipa::path(get, path = "/api/v1/packages", tag = "packages", security(("bearer" = [])),
    params(PackageListQuery),
    responses((status = 200, body = PackagePage), (status = 400, body = ErrorBody)))]
#[get("/api/v1/packages")]
pub async fn list_packages(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<PackageListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let limit = page_limit(query.limit)?;
    let query = query.into_inner();
    let filter = PackageFilter {
        target_firmware_id: query.target_firmware_id,
        model: query.model,
    };
    let packages = state
        .store
        .packages()
        .list(&filter, query.after, limit)
        .await?;
    let next = (packages.len() as u64 == limit)
        .then(|| packages.last().map(|p| p.id))
        .flatten();
    Ok(HttpResponse::Ok().json(PackagePage {
        packages: packages.into_iter().map(Into::into).collect(),
        next,
    }))
}

async fn load_package(state: &AppState, id: i64) -> Result<PackageRecord, ApiError> {
    state
        .store
        .packages()
        .get(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no package {id}")))
}

/// One package with its signed manifest.
#[utoipa::path(get, path = "/api/v1/packages/{id}", tag = "packages", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = PackageView), (status = 404, body = ErrorBody)))]
#[get("/api/v1/packages/{id}")]
pub async fn get_package(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(HttpResponse::Ok().json(PackageView::from(load_package(&state, *id).await?)))
}

/// A single `bytes=` range of an object of `size` bytes: `None` for no (or an ignored)
/// Range header, `Err` when it cannot be satisfied.
fn parse_range(value: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // several ranges: answer with the whole object
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            if n == 0 {
                return Some(Err(()));
            }
            (size.saturating_sub(n), size.checked_sub(1)?)
        }
        (start, "") => (start.parse().ok()?, size.checked_sub(1)?),
        (start, end) => {
            let (s, e): (u64, u64) = (start.parse().ok()?, end.parse().ok()?);
            if e < s {
                return None;
            }
            (s, e.min(size.saturating_sub(1)))
        }
    };
    if start >= size {
        return Some(Err(()));
    }
    Some(Ok((start, end)))
}

/// The package file. Supports a single HTTP Range (206), for resumable downloads.
#[utoipa::path(get, path = "/api/v1/packages/{id}/download", tag = "packages", security(("bearer" = [])),
    params(("id" = i64, Path), ("range" = Option<String>, Header, description = "bytes=START-END")),
    responses(
        (status = 200, description = "the package file", content_type = "application/octet-stream"),
        (status = 206, description = "the requested range"),
        (status = 404, body = ErrorBody),
        (status = 416, description = "range not satisfiable"),
    ))]
#[get("/api/v1/packages/{id}/download")]
pub async fn download_package(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let package = load_package(&state, *id).await?;
    let key = BlobKey::new(package.blob_key.clone()).map_err(ApiError::internal)?;
    let size = package.size;
    let etag = format!("\"{}\"", package.sha256);
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_range(v, size));
    let to_actix = |r: Result<bytes::Bytes, BlobError>| r.map_err(std::io::Error::other);
    match range {
        Some(Err(())) => Ok(HttpResponse::RangeNotSatisfiable()
            .insert_header((header::CONTENT_RANGE, format!("bytes */{size}")))
            .finish()),
        Some(Ok((start, end))) => {
            let stream = state.blobs.get_range(&key, start..end + 1).await?;
            Ok(HttpResponse::PartialContent()
                .content_type("application/octet-stream")
                .insert_header((header::ACCEPT_RANGES, "bytes"))
                .insert_header((header::ETAG, etag))
                .insert_header((header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}")))
                .body(SizedStream::new(end + 1 - start, stream.map(to_actix))))
        }
        None => {
            let (meta, stream) = state.blobs.get(&key).await?;
            Ok(HttpResponse::Ok()
                .content_type("application/octet-stream")
                .insert_header((header::ACCEPT_RANGES, "bytes"))
                .insert_header((header::ETAG, etag))
                .insert_header((
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"package-{}.upk\"", package.id),
                ))
                .body(SizedStream::new(meta.size, stream.map(to_actix))))
        }
    }
}

/// The stable error code of each way a package can be refused.
fn package_error(err: PackageError) -> ApiError {
    let code = match &err {
        PackageError::Truncated(_) => "truncated",
        PackageError::TrailingData => "trailing_data",
        PackageError::BadHeader(_) => "bad_header",
        PackageError::TamperedManifest => "tampered_manifest",
        PackageError::UnknownKey(_) => "unknown_key",
        PackageError::BadSignature => "bad_signature",
        PackageError::InvalidManifest(_) => "invalid_manifest",
        PackageError::KeyIdMismatch { .. } => "key_id_mismatch",
        PackageError::Expired { .. } => "expired",
        PackageError::WrongModel { .. } => "wrong_model",
        PackageError::Rollback { .. } => "rollback",
        PackageError::SourceRequired { .. } => "source_required",
        PackageError::WrongSource { .. } => "wrong_source",
        PackageError::TamperedPayload => "tampered_payload",
        PackageError::CorruptPayload(_) => "corrupt_payload",
        PackageError::TargetMismatch => "target_mismatch",
        PackageError::Io(_) => return ApiError::internal(err),
    };
    ApiError::Unprocessable {
        code,
        message: format!("package refused: {err}"),
    }
}

/// Uploads a package built and signed offline (`updraft package build`). It is checked
/// while it streams (header, manifest, signature against the registered keys, expiry,
/// payload size and sha256) and stored only if every check passes. The same file again
/// answers 200 with the existing record.
#[utoipa::path(post, path = "/api/v1/packages", tag = "packages", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "stored", body = PackageView),
        (status = 200, description = "the same package was already stored", body = PackageView),
        (status = 413, body = ErrorBody),
        (status = 422, description = "refused; the code names the failed check (`unknown_key`, `bad_signature`, `tampered_payload`, `truncated`, …)", body = ErrorBody),
    ))]
#[post("/api/v1/packages")]
pub async fn upload_package(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let limit = state.config.firmware.max_bytes;
    if let Some(length) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && length > limit
    {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let now = chrono::Utc::now();
    let ring = keys::trusted_ring(&state.store).await?;
    let check = Rc::new(RefCell::new(PackageCheck::new(ring, now.timestamp())));
    let stream = CheckedStream::new(
        body.map(|chunk| chunk.map_err(std::io::Error::other)),
        check.clone(),
    );
    let options = PutOptions {
        max_bytes: Some(limit),
        expected_sha256: None,
    };
    let stored = match state
        .blobs
        .put_content_addressed(PACKAGE_PREFIX, stream, &options)
        .await
    {
        Ok(stored) => stored,
        Err(err) => {
            let refused = check.borrow_mut().take_error();
            return Err(match refused {
                Some(reason) => package_error(reason),
                None => err.into(),
            });
        }
    };
    let manifest =
        check.borrow().manifest().cloned().ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("verified upload has no manifest"))
        })?;
    let firmware = state.store.firmware();
    let matching = |f: &crate::store::Firmware| {
        f.manufacturer == manifest.manufacturer && f.model == manifest.model
    };
    let target = firmware
        .find_by_sha256(&manifest.target.sha256.to_string())
        .await?
        .filter(matching);
    let source = match &manifest.source {
        Some(source) => firmware
            .find_by_sha256(&source.sha256.to_string())
            .await?
            .filter(matching),
        None => None,
    };
    let new = new_package(
        &manifest,
        PackageOrigin::Uploaded,
        target.map(|f| f.id),
        source.map(|f| f.id),
        stored.key.as_str().to_owned(),
        stored.size,
        stored.sha256.clone().unwrap_or_default(),
    );
    let (record, created) = state.store.packages().insert_uploaded(new, now).await?;
    let view = PackageView::from(record);
    Ok(if created {
        HttpResponse::Created().json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}
