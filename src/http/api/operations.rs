//! Management operations: queue Get/Replace/Add/Delete/Exec for a device's next session (large
//! values streamed into the blob store), follow their lifecycle, cancel and requeue them.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use base64::Engine;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::devices::load_device;
use crate::access::Role;
use crate::blob::PutOptions;
use crate::dm::message::Format;
use crate::dm::session::{BlobRef, Operation, Value, ValueData};
use crate::http::{ApiError, AppState, Caller, ErrorBody};
use crate::store::{NewOperation, OperationRecord, OperationState, Refusal};

/// The inline cap: larger values go through the upload endpoint into the blob store.
const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Blob prefix of uploaded operation values (content-addressed).
const VALUE_PREFIX: &str = "operation-values/";

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
    /// Who learns this operation's outcome, e.g. `update_job:42` (1 to 128 characters).
    pub owner: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OperationView {
    pub id: i64,
    pub device_id: String,
    #[schema(value_type = Object)]
    pub operation: serde_json::Value,
    pub sequence_group: Option<String>,
    pub owner: Option<String>,
    /// `queued` → `sent` → `done` / `failed`; `accepted` (an Exec answered 202, until its
    /// Generic Alert), `expired` (sent, no status came; never resent by itself), `cancelled`.
    pub state: OperationState,
    /// The device's SyncML status code for the command.
    pub status_code: Option<u16>,
    /// The result code of the Generic Alert that settled an accepted Exec.
    pub result_code: Option<u32>,
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
            owner: r.owner,
            state: r.state,
            status_code: r.status_code,
            result_code: r.result_code,
            results: r.results,
            failure: r.failure,
            session_id: r.session_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn to_operation(q: QueueOperation) -> Result<(Operation, Option<String>), ApiError> {
    let uri = check_uri(&q.uri)?;
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
        if data.len() > MAX_VALUE_BYTES as u64 {
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

fn check_owner(owner: &Option<String>) -> Result<(), ApiError> {
    if let Some(o) = owner
        && (o.is_empty() || o.len() > 128 || o.chars().any(char::is_control))
    {
        return Err(ApiError::BadRequest(
            "owner must be 1 to 128 printable characters".into(),
        ));
    }
    Ok(())
}

fn check_uri(uri: &str) -> Result<String, ApiError> {
    let uri = uri.trim();
    if uri.is_empty() || uri.len() > 1024 || uri.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "uri must be 1 to 1024 printable characters".into(),
        ));
    }
    Ok(uri.to_owned())
}

fn refusal(id: i64, r: Refusal) -> ApiError {
    match r {
        Refusal::WrongState(state) => ApiError::Conflict(format!(
            "operation {id} is {}: the action does not apply",
            state.as_str()
        )),
        Refusal::ExecNeedsForce => ApiError::Conflict(format!(
            "operation {id} is an Exec that may have run already: requeue it with force=true"
        )),
    }
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
    let body = body.into_inner();
    check_owner(&body.owner)?;
    let owner = body.owner.clone();
    let (operation, group) = to_operation(body)?;
    let record = state
        .store
        .operations()
        .enqueue_new(
            NewOperation {
                device_id: &device.id,
                operation: &operation,
                sequence_group: group,
                owner,
            },
            chrono::Utc::now(),
        )
        .await?;
    Ok(HttpResponse::Created().json(OperationView::from(record)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadValue {
    /// `replace` or `add`.
    pub kind: String,
    /// Target node, e.g. `./FUMO/fw1/Update/PkgData`.
    pub uri: String,
    /// Meta Type (MIME type) of the value.
    pub mime_type: Option<String>,
    pub sequence_group: Option<String>,
    pub owner: Option<String>,
}

/// Queues a Replace or Add whose value is the request body, streamed into the blob store (up
/// to `dm.max_object_bytes`). It reaches the device as a Large Object, one window per message.
#[utoipa::path(post, path = "/api/v1/devices/{id}/operations/upload", tag = "operations", security(("bearer" = [])),
    params(("id" = String, Path), UploadValue),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, body = OperationView),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody),
    ))]
#[post("/api/v1/devices/{id}/operations/upload")]
pub async fn upload_operation(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    query: web::Query<UploadValue>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let device = load_device(&state, &id).await?;
    let query = query.into_inner();
    let uri = check_uri(&query.uri)?;
    check_owner(&query.owner)?;
    if !matches!(query.kind.as_str(), "replace" | "add") {
        return Err(ApiError::BadRequest(format!(
            "kind {:?}: an uploaded value goes with replace or add",
            query.kind
        )));
    }
    let limit = state.config.dm.max_object_bytes;
    if let Some(length) = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && length > limit
    {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let body = body.map(|chunk| chunk.map_err(std::io::Error::other));
    let options = PutOptions {
        max_bytes: Some(limit),
        ..PutOptions::default()
    };
    // Content-addressed: the same bytes uploaded twice share one object, and a refused
    // upload leaves nothing behind.
    let meta = state
        .blobs
        .put_content_addressed(VALUE_PREFIX, body, &options)
        .await?;
    let value = Value {
        format: Format::Bin,
        mime_type: query.mime_type,
        data: ValueData::Blob(BlobRef {
            key: meta.key.as_str().to_owned(),
            size: meta.size,
        }),
    };
    let operation = if query.kind == "add" {
        Operation::Add {
            uri,
            value: Some(value),
        }
    } else {
        Operation::Replace { uri, value }
    };
    let record = state
        .store
        .operations()
        .enqueue_new(
            NewOperation {
                device_id: &device.id,
                operation: &operation,
                sequence_group: query.sequence_group,
                owner: query.owner,
            },
            chrono::Utc::now(),
        )
        .await?;
    Ok(HttpResponse::Created().json(OperationView::from(record)))
}

/// Cancels a queued operation. Only before it is sent: 409 once it went out.
#[utoipa::path(post, path = "/api/v1/operations/{op_id}/cancel", tag = "operations", security(("bearer" = [])),
    params(("op_id" = i64, Path)),
    responses(
        (status = 200, body = OperationView),
        (status = 404, body = ErrorBody),
        (status = 409, description = "not queued any more", body = ErrorBody),
    ))]
#[post("/api/v1/operations/{op_id}/cancel")]
pub async fn cancel_operation(
    caller: Caller,
    state: web::Data<AppState>,
    op_id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let id = *op_id;
    match state
        .store
        .operations()
        .cancel(id, chrono::Utc::now())
        .await
    {
        Ok(Ok(record)) => Ok(HttpResponse::Ok().json(OperationView::from(record))),
        Ok(Err(r)) => Err(refusal(id, r)),
        Err(crate::store::StoreError::NotFound) => {
            Err(ApiError::NotFound(format!("no operation {id}")))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RequeueQuery {
    /// Required to requeue an Exec: it may have run on the device already.
    #[serde(default)]
    pub force: bool,
}

/// Queues an expired, failed or cancelled operation again, for the device's next session.
/// An Exec is refused unless `force=true`.
#[utoipa::path(post, path = "/api/v1/operations/{op_id}/requeue", tag = "operations", security(("bearer" = [])),
    params(("op_id" = i64, Path), RequeueQuery),
    responses(
        (status = 200, body = OperationView),
        (status = 404, body = ErrorBody),
        (status = 409, description = "not in a state that can be requeued, or an Exec without force", body = ErrorBody),
    ))]
#[post("/api/v1/operations/{op_id}/requeue")]
pub async fn requeue_operation(
    caller: Caller,
    state: web::Data<AppState>,
    op_id: web::Path<i64>,
    query: web::Query<RequeueQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let id = *op_id;
    match state
        .store
        .operations()
        .requeue(id, query.force, chrono::Utc::now())
        .await
    {
        Ok(Ok(record)) => Ok(HttpResponse::Ok().json(OperationView::from(record))),
        Ok(Err(r)) => Err(refusal(id, r)),
        Err(crate::store::StoreError::NotFound) => {
            Err(ApiError::NotFound(format!("no operation {id}")))
        }
        Err(e) => Err(e.into()),
    }
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
