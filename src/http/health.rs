//! `/healthz` (the process answers), `/readyz` (its database and blob store answer) and `/metrics`.

use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use serde::Serialize;

use super::AppState;

/// How long a dependency may take before readiness calls it down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    pub database: Check,
    pub blob_store: Check,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Check {
    pub ok: bool,
    pub backend: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Liveness: answers while the process can serve HTTP at all.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "alive")))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Readiness: 200 when the database and the blob store both answer, else 503.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "ready", body = Readiness),
    (status = 503, description = "a dependency is unreachable", body = Readiness),
))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let (db, blob) = tokio::join!(
        tokio::time::timeout(CHECK_TIMEOUT, state.store.ping()),
        tokio::time::timeout(CHECK_TIMEOUT, state.blobs.check()),
    );
    let database = Check::from_outcome(
        state.store.backend_name(),
        db.map_err(|_| "timed out")
            .map(|r| r.map_err(|e| e.to_string())),
    );
    let blob_store = Check::from_outcome(
        state.blobs.backend_name(),
        blob.map_err(|_| "timed out")
            .map(|r| r.map_err(|e| e.to_string())),
    );
    let ready = database.ok && blob_store.ok;
    if !ready {
        tracing::warn!(
            database.ok = database.ok,
            blob_store.ok = blob_store.ok,
            "not ready"
        );
    }
    let body = Readiness {
        status: if ready { "ok" } else { "unavailable" },
        database,
        blob_store,
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

impl Check {
    fn from_outcome(backend: &'static str, outcome: Result<Result<(), String>, &str>) -> Check {
        let error = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(timeout) => Some(timeout.to_owned()),
        };
        Check {
            ok: error.is_none(),
            backend,
            error,
        }
    }
}

/// Prometheus scrape endpoint.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}
