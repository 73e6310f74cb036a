//! Update jobs: put one device on a target firmware through FUMO, follow it to its verdict.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};

use super::devices::load_device;
use crate::access::Role;
use crate::fumo::{JobState, PackageKind};
use crate::http::{ApiError, AppState, Caller, ErrorBody};
use crate::store::{DownloadStats, HistoryLine, InstallReport, UpdateJobRecord};
use crate::updates::{Delivery, UpdateError, UpdateRequest};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUpdate {
    /// The firmware the device must end up running.
    pub target_firmware_id: i64,
    /// `url` (the device downloads a PkgURL), `inline` (the package as a DM Large Object
    /// into `<x>/Update/PkgData`) or `auto` (URL unless the model is configured as unable to
    /// download). Default `auto`.
    pub delivery: Option<String>,
    /// When the job gives up (`timed_out`); default: the `updates.default_deadline_secs` setting.
    pub deadline: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UpdateView {
    pub id: i64,
    pub device_id: String,
    pub target_firmware_id: i64,
    pub target_version: String,
    /// As requested: `url`, `inline` or `auto`.
    pub delivery: String,
    pub state: JobState,
    /// Why the job failed (e.g. `not_confirmed`, `reported 404 (…)`), or the last transient
    /// failure while it waits to retry.
    pub failure: Option<String>,
    /// The FUMO result code of the device's report.
    pub result_code: Option<u32>,
    pub package_id: Option<i64>,
    pub package_kind: Option<PackageKind>,
    pub attempt: u32,
    pub max_attempts: u32,
    /// The job key in every Exec and Generic Alert of the current attempt.
    pub correlator: String,
    pub fumo_node: Option<String>,
    /// `./DevDetail/FwV` as read after the report.
    pub confirmed_version: Option<String>,
    /// Package bytes the device-facing download route served for this job (resumed ranges
    /// add up); 0 for inline delivery, whose bytes travel in DM messages.
    pub bytes_served: u64,
    /// The OMA Download install-notify status the device posted, if it uses a descriptor.
    pub install_notify: Option<InstallReport>,
    pub deadline: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub history: Vec<HistoryLine>,
}

fn view(
    r: UpdateJobRecord,
    history: Vec<HistoryLine>,
    downloads: Option<DownloadStats>,
) -> UpdateView {
    let j = &r.job;
    UpdateView {
        id: r.id,
        device_id: r.device_id.clone(),
        target_firmware_id: r.target_firmware_id,
        target_version: j.target_version.clone(),
        delivery: r.delivery.clone(),
        state: j.state,
        failure: j.failure.clone(),
        result_code: j.result_code,
        package_id: j.package.map(|(id, _)| id),
        package_kind: j.package.map(|(_, kind)| kind),
        attempt: j.attempt,
        max_attempts: j.max_attempts,
        correlator: j.correlator(),
        fumo_node: j.fumo_node.clone(),
        confirmed_version: j.confirmed_version.clone(),
        bytes_served: downloads.as_ref().map_or(0, |d| d.bytes_served),
        install_notify: downloads.and_then(|d| d.install),
        deadline: j
            .deadline_ms
            .and_then(chrono::DateTime::from_timestamp_millis),
        created_at: r.created_at,
        updated_at: r.updated_at,
        finished_at: r.finished_at,
        history,
    }
}

impl From<UpdateError> for ApiError {
    fn from(e: UpdateError) -> Self {
        match e {
            UpdateError::NoDevice(_) | UpdateError::NoFirmware(_) => {
                ApiError::NotFound(e.to_string())
            }
            UpdateError::Busy(_) | UpdateError::TooLateToCancel | UpdateError::Final(_) => {
                ApiError::Conflict(e.to_string())
            }
            UpdateError::DeadlinePassed => ApiError::BadRequest(e.to_string()),
            UpdateError::Store(s) => s.into(),
        }
    }
}

async fn with_history(state: &AppState, r: UpdateJobRecord) -> Result<UpdateView, ApiError> {
    let history = state.store.update_jobs().history(r.id).await?;
    let downloads = state
        .store
        .downloads()
        .get(&crate::updates::download_job_key(r.id))
        .await?;
    Ok(view(r, history, downloads))
}

/// Creates an update job: the device is notified (Package 0) and, in its session, gets the
/// package chosen from the firmware version it reports.
#[utoipa::path(post, path = "/api/v1/devices/{id}/updates", tag = "updates", security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body = CreateUpdate,
    responses(
        (status = 201, body = UpdateView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "no such device or firmware", body = ErrorBody),
        (status = 409, description = "the device has an active job", body = ErrorBody),
    ))]
#[post("/api/v1/devices/{id}/updates")]
pub async fn create_update(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<CreateUpdate>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let device = load_device(&state, &id).await?;
    let b = body.into_inner();
    let delivery = match b.delivery.as_deref() {
        None => Delivery::Auto,
        Some(d) => Delivery::parse(d).ok_or_else(|| {
            ApiError::BadRequest(format!("delivery {d:?}: expected url, inline or auto"))
        })?,
    };
    let record = state
        .updates
        .create(
            UpdateRequest {
                device_id: device.id,
                target_firmware_id: b.target_firmware_id,
                delivery,
                deadline: b.deadline,
            },
            chrono::Utc::now(),
        )
        .await?;
    Ok(HttpResponse::Created().json(with_history(&state, record).await?))
}

/// The device's update jobs, newest first.
#[utoipa::path(get, path = "/api/v1/devices/{id}/updates", tag = "updates", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, body = [UpdateView]),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
#[get("/api/v1/devices/{id}/updates")]
pub async fn list_device_updates(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let device = load_device(&state, &id).await?;
    let mut out = Vec::new();
    for r in state
        .store
        .update_jobs()
        .for_device(&device.id, 100)
        .await?
    {
        out.push(with_history(&state, r).await?);
    }
    Ok(HttpResponse::Ok().json(out))
}

/// One update job with its state history.
#[utoipa::path(get, path = "/api/v1/updates/{update_id}", tag = "updates", security(("bearer" = [])),
    params(("update_id" = i64, Path)),
    responses(
        (status = 200, body = UpdateView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
#[get("/api/v1/updates/{update_id}")]
pub async fn get_update(
    caller: Caller,
    state: web::Data<AppState>,
    update_id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let record = state
        .store
        .update_jobs()
        .get(*update_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no update job {update_id}")))?;
    Ok(HttpResponse::Ok().json(with_history(&state, record).await?))
}

/// Cancels a job before the device got its Exec (409 after: the device may be installing).
#[utoipa::path(post, path = "/api/v1/updates/{update_id}/cancel", tag = "updates", security(("bearer" = [])),
    params(("update_id" = i64, Path)),
    responses(
        (status = 200, body = UpdateView),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "final, or the Exec went out", body = ErrorBody),
    ))]
#[post("/api/v1/updates/{update_id}/cancel")]
pub async fn cancel_update(
    caller: Caller,
    state: web::Data<AppState>,
    update_id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let record = state
        .updates
        .cancel(*update_id, chrono::Utc::now())
        .await
        .map_err(|e| match e {
            UpdateError::Store(crate::store::StoreError::NotFound) => {
                ApiError::NotFound(format!("no update job {update_id}"))
            }
            other => other.into(),
        })?;
    Ok(HttpResponse::Ok().json(with_history(&state, record).await?))
}
