//! The admin REST API under `/api/v1`.

mod whoami;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(whoami::whoami)
        .service(super::openapi::openapi_json);
}

pub(super) use whoami::__path_whoami;
