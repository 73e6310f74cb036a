//! Management operations: queue Get/Replace/Add/Delete/Exec for a device's next session, read outcomes.

use actix_web::{HttpResponse, get, post, web};
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::devices::load_device;
use crate::access::Role;
use crate::dm::message::Format;
use crate::dm::session::{Operation, Value, ValueData};
use crate::http::{ApiError, AppState, Caller, ErrorBody};
use crate::store::{OperationRecord, OperationState};

const MAX_VALUE_BYTES: usize = 64 * 1024;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueOperation {
    /// `get`, `replace`, `add`, `delete` or `exec`.
    pub kind: String,
    /// Target node, e.g. `./DevDetail/FwV` or `./FUMO/1/DownloadAndUpdate`.
    pub uri: String,
    /// Value for replace/add (text), or the Exec argument.
    pub data: Option<String>,
    /// Binary value for replace/add, base64-encoded (sent as b64/bin).
    pub data_base64: Option<String>,
    /// Meta Format for text values (`chr` by default; `int`, `bool`, `xml`, …).
    pub format: Option<String>,
    /// Meta Type (MIME type) of the value.
    pub mime_type: Option<String>,
    /// Exec only: echoed by the device in its Generic Alert report.
    pub correlator: Option<String>,
    /// Operations with the same group go in one Sequence, executed in order.
    pub sequence_group: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OperationView {
    pub id: i64,
    pub device_id: String,
    #[schema(value_type = Object)]
    pub operation: serde_json::Value,
    pub sequence_group: Option<String>,
    pub state: OperationState,
    /// The device's SyncML status code for the command.
    pub status_code: Option<u16>,
    /// Results of a Get.
    #[schema(value_type = Option<Object>)]
    pub results: Option<serde_json::Value>,
    pub failure: Option<String>,
    pub session_id: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<OperationRecord> for OperationView {
    fn from(r: OperationRecord) -> Self {
        OperationView {
            id: r.id,
            device_id: r.device_id,
            operation: serde_json::to_value(&r.operation).expect("operations serialise"),
            sequence_group: r.sequence_group,
            state: r.state,
            status_code: r.status_code,
            results: r.results,
            failure: r.failure,
            session_id: r.session_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn to_operation(q: QueueOperation) -> Result<(Operation, Option<String>), ApiError> {
    let uri = q.uri.trim().to_owned();
    if uri.is_empty() || uri.len() > 1024 || uri.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "uri must be 1 to 1024 printable characters".into(),
        ));
    }
    let value = || -> Result<Option<Value>, ApiError> {
        let data = match (&q.data, &q.data_base64) {
            (Some(_), Some(_)) => {
                return Err(ApiError::BadRequest(
                    "give data or data_base64, not both".into(),
                ));
            }
            (Some(text), None) => ValueData::Text(text.clone()),
            (None, Some(b64)) => ValueData::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| ApiError::BadRequest(format!("data_base64: {e}")))?,
            ),
            (None, None) => return Ok(None),
        };
        let size = match &data {
            ValueData::Text(t) => t.len(),
            ValueData::Bytes(b) => b.len(),
        };
        if size > MAX_VALUE_BYTES {
            return Err(ApiError::PayloadTooLarge {
                limit: MAX_VALUE_BYTES as u64,
            });
        }
        Ok(Some(Value {
            format: Format::parse(q.format.as_deref().unwrap_or("chr")),
            mime_type: q.mime_type.clone(),
            data,
        }))
    };
    let operation = match q.kind.as_str() {
        "get" => Operation::Get { uri },
        "delete" => Operation::Delete { uri },
        "replace" => Operation::Replace {
            uri,
            value: value()?
                .ok_or_else(|| ApiError::BadRequest("replace needs data or data_base64".into()))?,
        },
        "add" => Operation::Add {
            uri,
            value: value()?,
        },
        "exec" => Operation::Exec {
            uri,
            data: q.data.clone(),
            correlator: q.correlator.clone(),
        },
        other => {
            return Err(ApiError::BadRequest(format!(
                "kind {other:?}: expected get, replace, add, delete or exec"
            )));
        }
    };
    if q.correlator.is_some() && q.kind != "exec" {
        return Err(ApiError::BadRequest(
            "correlator goes with exec only".into(),
        ));
    }
    Ok((operation, q.sequence_group))
}

/// Queues a management command for the device's next session.
#[utoipa::path(post, path = "/api/v1/devices/{id}/operations", tag = "operations", security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body = QueueOperation,
    responses(
        (status = 201, body = OperationView),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
#[post("/api/v1/devices/{id}/operations")]
pub async fn queue_operation(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<QueueOperation>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let device = load_device(&state, &id).await?;
    let (operation, group) = to_operation(body.into_inner())?;
    let record = state
        .store
        .operations()
        .enqueue(&device.id, &operation, group, chrono::Utc::now())
        .await?;
    Ok(HttpResponse::Created().json(OperationView::from(record)))
}

/// The device's operations, newest first.
#[utoipa::path(get, path = "/api/v1/devices/{id}/operations", tag = "operations", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = [OperationView]), (status = 404, body = ErrorBody)))]
#[get("/api/v1/devices/{id}/operations")]
pub async fn list_operations(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let device = load_device(&state, &id).await?;
    let ops: Vec<OperationView> = state
        .store
        .operations()
        .for_device(&device.id, 500)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(ops))
}

/// One operation with its status and results.
#[utoipa::path(get, path = "/api/v1/operations/{op_id}", tag = "operations", security(("bearer" = [])),
    params(("op_id" = i64, Path)),
    responses((status = 200, body = OperationView), (status = 404, body = ErrorBody)))]
#[get("/api/v1/operations/{op_id}")]
pub async fn get_operation(
    caller: Caller,
    state: web::Data<AppState>,
    op_id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let record = state
        .store
        .operations()
        .get(*op_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no operation {op_id}")))?;
    Ok(HttpResponse::Ok().json(OperationView::from(record)))
}
