//! The admin REST API under `/api/v1`.

mod tokens;
mod whoami;

use actix_web::web;

pub(super) use tokens::{
    __path_create_token, __path_list_tokens, __path_revoke_token, CreateToken, CreatedToken,
    TokenView,
};
pub(super) use whoami::{__path_whoami, WhoAmI};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(whoami::whoami)
        .service(tokens::create_token)
        .service(tokens::list_tokens)
        .service(tokens::revoke_token)
        .service(super::openapi::openapi_json);
}
