//! `POST /api/v1/devices/import`: a streamed NDJSON or CSV body of devices, provisioned in
//! batches (see `crate::devices::import`).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use futures_util::StreamExt;
use serde::Deserialize;

use crate::access::Role;
use crate::devices::import::{
    self, DEFAULT_BATCH_SIZE, ImportError, ImportFormat, ImportOptions, ImportReport,
    MAX_BATCH_SIZE,
};
use crate::http::{ApiError, AppState, Caller, ErrorBody};

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// Device lines per batch and per transaction, 1 to 10000 (default 1000).
    pub batch_size: Option<usize>,
}

fn format_of(req: &HttpRequest) -> Result<ImportFormat, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-ndjson" => Ok(ImportFormat::Ndjson),
        "text/csv" => Ok(ImportFormat::Csv),
        _ => Err(ApiError::UnsupportedMediaType(
            "expected Content-Type: application/x-ndjson or text/csv".into(),
        )),
    }
}

/// What the batches before the bound did, for a 413 that comes after some were committed.
fn committed(report: &ImportReport) -> String {
    format!(
        "{} batch(es) with {} device(s) before it were committed, {} rejected; the rest was not read",
        report.batches_committed, report.imported, report.batches_rejected
    )
}

/// Provisions devices from a streamed body, one per line: NDJSON (`application/x-ndjson`,
/// the `POST /api/v1/devices` shape) or CSV (`text/csv`, a header row naming the columns).
/// Each batch of `batch_size` lines is one transaction: written whole, or rejected whole when
/// any of its lines is bad. The report lists every bad line (the first 1000).
#[utoipa::path(post, path = "/api/v1/devices/import", tag = "devices", security(("bearer" = [])),
    params(ImportQuery),
    request_body(content = String, content_type = "application/x-ndjson",
        description = "one device per line; or text/csv with a header row"),
    responses(
        (status = 200, description = "the body was read to its end; the report says what was imported and which lines were bad", body = ImportReport),
        (status = 400, description = "bad batch_size or CSV header row; nothing imported", body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 413, description = "the body is longer than devices.import_max_bytes", body = ErrorBody),
        (status = 415, body = ErrorBody),
    ))]
#[post("/api/v1/devices/import")]
pub async fn import_devices(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<ImportQuery>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let format = format_of(&req)?;
    let batch_size = query.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
    if !(1..=MAX_BATCH_SIZE).contains(&batch_size) {
        return Err(ApiError::BadRequest(format!(
            "batch_size must be between 1 and {MAX_BATCH_SIZE}"
        )));
    }
    let limit = state.config.devices.import_max_bytes;
    if let Some(length) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && length > limit
    {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let options = ImportOptions {
        format,
        batch_size,
        max_bytes: limit,
        max_line_bytes: state.config.devices.import_max_line_bytes,
    };
    let body = body.map(|chunk| chunk.map_err(std::io::Error::other));
    match import::import(&state.store, body, &options).await {
        Ok(report) => Ok(HttpResponse::Ok().json(report)),
        Err(ImportError::Header(message)) => Err(ApiError::BadRequest(message)),
        Err(ImportError::TooLarge { limit, report }) => Err(ApiError::PayloadTooLargeAfter {
            limit,
            detail: committed(&report),
        }),
        Err(ImportError::Body { reason, report }) => Err(ApiError::BadRequest(format!(
            "the body could not be read ({reason}); {}",
            committed(&report)
        ))),
        Err(ImportError::Store(e)) => Err(e.into()),
    }
}
