//! The HTTP edge: the only module that knows actix-web. Routes, extractors, errors, middleware.

mod api;
mod auth;
mod dm;
mod downloads;
mod error;
mod health;
mod metrics;
mod observe;
pub mod openapi;
mod server;

use actix_web::{HttpRequest, HttpResponse, middleware, web};

use crate::blob::BlobStore;
use crate::config::Config;
use crate::dm_edge::DmEdge;
use crate::dm_edge::notify::Notifier;
use crate::downloads::Downloads;
use crate::keys::KeyFolder;
use crate::store::Store;

pub use auth::Caller;
pub use error::{ApiError, ErrorBody};
pub use metrics::Metrics;
pub use server::{HttpService, StopHandle};

/// What every handler can reach. Cheap to share: handles and pools inside.
pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub blobs: BlobStore,
    pub metrics: Metrics,
    pub dm: DmEdge,
    pub notifier: Notifier,
    pub keys: KeyFolder,
    pub updates: crate::updates::Updates,
    pub campaigns: crate::campaigns::Campaigns,
    pub downloads: Downloads,
}

/// Registers every route and the app-wide extractor settings on an actix `App`.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        let json_limit = state.config.http.max_json_bytes;
        cfg.app_data(state)
            .app_data(error::json_config(json_limit))
            .app_data(error::path_config())
            .app_data(error::query_config())
            .app_data(web::PayloadConfig::new(json_limit))
            .service(health::healthz)
            .service(health::readyz)
            .service(health::metrics)
            .configure(dm::configure)
            .configure(downloads::configure)
            .configure(api::configure)
            .default_service(web::to(not_found));
    }
}

/// Builds the actix `App` factory closure used by the server (and by in-process tests).
pub fn app(
    state: web::Data<AppState>,
) -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    actix_web::App::new()
        .wrap(middleware::from_fn(observe::observe))
        .configure(configure(state))
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    ApiError::NotFound(format!("no route for {} {}", req.method(), req.path())).error_response()
}
