//! The OpenAPI document, generated from the handlers' annotations and served at `/api/v1/openapi.json`.
//!
//! `openapi/openapi.json` in the repository is this document, committed; a test fails
//! when they drift apart (`UPDATE_OPENAPI=1 cargo test` rewrites the file).

use actix_web::{HttpResponse, get};
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(title = "Updraft admin API", description = "Firmware-over-the-air campaigns, firmware, packages and devices."),
    paths(
        super::health::healthz,
        super::health::readyz,
        super::health::metrics,
        super::api::whoami,
        super::api::create_token,
        super::api::list_tokens,
        super::api::revoke_token,
        openapi_json,
    ),
    components(schemas(
        super::ErrorBody,
        super::error::ErrorDetail,
        super::api::WhoAmI,
        super::api::CreateToken,
        super::api::CreatedToken,
        super::api::TokenView,
    )),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document as pretty JSON with a trailing newline, exactly as committed.
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let mut json = doc
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    json.push('\n');
    json
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200, description = "OpenAPI document")))]
#[get("/api/v1/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}
