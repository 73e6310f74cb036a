//! Per-request middleware: request id, a tracing span, an access log line and the HTTP metrics.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use tracing::Instrument;

use super::AppState;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id a caller sent, if it is sane to echo and log; otherwise a fresh one.
fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered")
        .clone();
    let id = request_id(&req);
    let method = req.method().to_string();
    let span = tracing::info_span!(
        "http.request",
        request.id = %id,
        http.method = %method,
        http.path = %super::downloads::loggable_path(req.path()),
    );
    state.metrics.http_in_flight.inc();
    let started = Instant::now();
    let result = next.call(req).instrument(span.clone()).await;
    state.metrics.http_in_flight.dec();
    let elapsed = started.elapsed();

    let mut res = result?;
    // The matched pattern (`/api/v1/devices/{id}`), not the path, keeps label cardinality bounded.
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16();
    state
        .metrics
        .http_requests
        .with_label_values(&[&method, &route, &status.to_string()])
        .inc();
    state
        .metrics
        .http_duration
        .with_label_values(&[&method, &route])
        .observe(elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            http.route = %route,
            http.status = status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request answered"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(res)
}
