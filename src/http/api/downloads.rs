//! `/api/v1/packages/{id}/download-links` and `/api/v1/downloads/{job_key}`: device
//! download links minted by an operator, and what was served under a job key.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};

use crate::access::Role;
use crate::downloads::MintError;
use crate::http::{ApiError, AppState, Caller, ErrorBody};
use crate::store::DownloadStats;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintLink {
    /// The key the served bytes and the install status are recorded under (letters,
    /// digits, `.`, `_`, `:`, `-`; at most 64). Default: a fresh `link-…` key.
    pub job_key: Option<String>,
    /// Lifetime in seconds; default `downloads.link_ttl_secs`, at most
    /// `downloads.max_link_ttl_secs`.
    pub ttl_secs: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DownloadLinkView {
    pub job_key: String,
    /// The package, for a device: `GET`/`HEAD` with `Range`, no other credential.
    pub url: String,
    /// Its OMA Download descriptor (`application/vnd.oma.dd+xml`).
    pub descriptor_url: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Mints a device download link for a package. The URL is the credential: anyone who
/// has it can fetch the package until it expires, so hand it only to the device.
#[utoipa::path(post, path = "/api/v1/packages/{id}/download-links", tag = "packages",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = MintLink,
    responses(
        (status = 201, body = DownloadLinkView),
        (status = 400, description = "bad job key or lifetime", body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
#[post("/api/v1/packages/{id}/download-links")]
pub async fn mint_download_link(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<MintLink>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let package = state
        .store
        .packages()
        .get(*id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no package {id}")))?;
    let body = body.into_inner();
    let job_key = body
        .job_key
        .unwrap_or_else(|| format!("link-{}", uuid::Uuid::new_v4().simple()));
    let ttl = body.ttl_secs.map(std::time::Duration::from_secs);
    let link = state
        .downloads
        .mint(&job_key, package.id, ttl, chrono::Utc::now())
        .map_err(|err: MintError| ApiError::BadRequest(err.to_string()))?;
    Ok(HttpResponse::Created().json(DownloadLinkView {
        job_key: link.job_key,
        url: link.url,
        descriptor_url: link.descriptor_url,
        expires_at: link.expires_at,
    }))
}

/// Bytes served and the device's install status under a job key.
#[utoipa::path(get, path = "/api/v1/downloads/{job_key}", tag = "packages",
    security(("bearer" = [])),
    params(("job_key" = String, Path)),
    responses((status = 200, body = DownloadStats), (status = 404, body = ErrorBody)))]
#[get("/api/v1/downloads/{job_key}")]
pub async fn download_stats(
    caller: Caller,
    state: web::Data<AppState>,
    job_key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let stats = state
        .store
        .downloads()
        .get(&job_key)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("nothing served under {job_key:?}")))?;
    Ok(HttpResponse::Ok().json(stats))
}
