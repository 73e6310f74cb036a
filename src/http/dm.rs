//! `POST /dm`: the OMA DM endpoint. Bytes in, bytes out; the protocol lives in `crate::dm_edge`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use super::{ApiError, AppState};
use crate::dm::Encoding;
use crate::dm_edge::DmError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/dm")
            .route(web::post().to(dm_message))
            .route(web::to(method_not_allowed)),
    );
}

/// Reads the body up to `limit` bytes; a longer one is refused before it is all read.
async fn read_limited(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, ApiError> {
    use futures_util::StreamExt;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge {
                limit: limit as u64,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[derive(serde::Deserialize)]
struct RespUriQuery {
    s: Option<String>,
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed(
        "the DM endpoint takes POST only".into(),
    ))
}

async fn dm_message(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Clients disagree on the content type (DM or DS types, parameters, sometimes none):
    // accept any SyncML type or none, and let the first byte decide the encoding.
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        if !Encoding::is_syncml_content_type(ct) {
            return Err(ApiError::UnsupportedMediaType(format!(
                "expected application/vnd.syncml.dm+xml or +wbxml, got {ct:?}"
            )));
        }
    }
    let body = read_limited(payload, state.dm.limits().max_message_bytes).await?;
    let hmac = req
        .headers()
        .get("x-syncml-hmac")
        .and_then(|v| v.to_str().ok());
    // The session token our RespURI carries (`?s=`); absent on a session's first message.
    let token = web::Query::<RespUriQuery>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().s);
    let reply = state
        .dm
        .handle(&body, hmac, token.as_deref(), chrono::Utc::now())
        .await
        .map_err(|err| match err {
            DmError::NotSyncMl(decode) if decode.http_status() == 413 => {
                ApiError::PayloadTooLarge {
                    limit: state.dm.limits().max_message_bytes as u64,
                }
            }
            DmError::NotSyncMl(decode) => {
                ApiError::BadRequest(format!("not a SyncML DM message: {decode}"))
            }
            DmError::Busy => ApiError::Unavailable("the session is busy; retry".into()),
            DmError::Store(e) => ApiError::internal(e),
            DmError::Blob(e) => ApiError::internal(e),
        })?;
    let mut response = HttpResponse::Ok()
        .content_type(reply.content_type)
        .body(reply.body);
    if let Some(hmac) = reply.hmac_header
        && let Ok(value) = HeaderValue::from_str(&hmac)
    {
        response
            .headers_mut()
            .insert(header::HeaderName::from_static("x-syncml-hmac"), value);
    }
    Ok(response)
}
