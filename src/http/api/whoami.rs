//! `GET /api/v1/whoami`: which token is calling, and with which role.

use actix_web::{HttpResponse, get};
use serde::Serialize;

use crate::access::Role;
use crate::http::{ApiError, Caller, ErrorBody};

#[derive(Serialize, utoipa::ToSchema)]
pub struct WhoAmI {
    pub token_id: String,
    pub name: String,
    #[schema(value_type = String, example = "admin")]
    pub role: Role,
}

/// The calling token's identity and role.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "access",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the caller", body = WhoAmI),
        (status = 401, description = "missing or invalid token", body = ErrorBody),
    ))]
#[get("/api/v1/whoami")]
pub async fn whoami(caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(HttpResponse::Ok().json(WhoAmI {
        token_id: caller.token.id,
        name: caller.token.name,
        role: caller.token.role,
    }))
}
