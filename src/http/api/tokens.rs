//! `/api/v1/tokens`: admins create, list and revoke API tokens.

use actix_web::{HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};

use crate::access::{self, Role};
use crate::http::{ApiError, AppState, Caller, ErrorBody};
use crate::store::ApiToken;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Unique, 1 to 128 characters.
    pub name: String,
    #[schema(value_type = String, example = "operator")]
    pub role: Role,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    #[schema(value_type = String)]
    pub role: Role,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: TokenView,
    /// The bearer token itself: returned only in this response.
    pub secret: String,
}

impl From<ApiToken> for TokenView {
    fn from(t: ApiToken) -> Self {
        TokenView {
            id: t.id,
            name: t.name,
            role: t.role,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// Creates a token; its secret is in this response only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "access", security(("bearer" = [])),
    request_body = CreateToken,
    responses(
        (status = 201, description = "created", body = CreatedToken),
        (status = 400, description = "invalid request", body = ErrorBody),
        (status = 403, description = "not an admin", body = ErrorBody),
        (status = 409, description = "name taken", body = ErrorBody),
    ))]
#[post("/api/v1/tokens")]
pub async fn create_token(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<CreateToken>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let body = body.into_inner();
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "name must be 1 to 128 printable characters".into(),
        ));
    }
    let new = access::generate_token();
    let token = state
        .store
        .tokens()
        .insert(name, body.role, &new.sha256_hex, chrono::Utc::now())
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => {
                ApiError::Conflict(format!("a token named {name:?} exists"))
            }
            other => other.into(),
        })?;
    tracing::info!(token.id = %token.id, token.role = token.role.as_str(), by = %caller.token.id, "API token created");
    use secrecy::ExposeSecret;
    Ok(HttpResponse::Created().json(CreatedToken {
        token: token.into(),
        secret: new.plaintext.expose_secret().to_owned(),
    }))
}

/// Every token, revoked ones included, newest first; never their secrets.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "access", security(("bearer" = [])),
    responses(
        (status = 200, description = "tokens", body = [TokenView]),
        (status = 403, description = "not an admin", body = ErrorBody),
    ))]
#[get("/api/v1/tokens")]
pub async fn list_tokens(
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let tokens: Vec<TokenView> = state
        .store
        .tokens()
        .list()
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(tokens))
}

/// Revokes a token; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "access", security(("bearer" = [])),
    params(("id" = String, Path, description = "token id")),
    responses(
        (status = 204, description = "revoked"),
        (status = 403, description = "not an admin", body = ErrorBody),
        (status = 404, description = "no such live token", body = ErrorBody),
    ))]
#[delete("/api/v1/tokens/{id}")]
pub async fn revoke_token(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    state
        .store
        .tokens()
        .revoke(&id, chrono::Utc::now())
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => {
                ApiError::NotFound(format!("no live token with id {id}"))
            }
            other => other.into(),
        })?;
    tracing::info!(token.id = %id, by = %caller.token.id, "API token revoked");
    Ok(HttpResponse::NoContent().finish())
}
