//! Bearer-token authentication of the admin API: an extractor that yields the caller's token.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use super::{ApiError, AppState};
use crate::access::{Role, token_digest};
use crate::store::ApiToken;

/// The authenticated caller. Extracting it answers 401 when the token is missing,
/// unknown or revoked; [`Caller::require`] answers 403 when its role is too weak.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token: ApiToken,
}

impl Caller {
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.token.role.allows(role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                have: self.token.role.as_str(),
                need: role.as_str(),
            })
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let bearer = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| token.trim().to_owned())
            });
        Box::pin(async move {
            let state = state.expect("AppState is registered");
            let token = bearer
                .filter(|t| !t.is_empty())
                .ok_or(ApiError::Unauthorized)?;
            let found = state
                .store
                .tokens()
                .find_active(&token_digest(&token))
                .await?
                .ok_or(ApiError::Unauthorized)?;
            // Last-use tracking is advisory: never fail a request because of it.
            if let Err(err) = state
                .store
                .tokens()
                .touch(&found.id, chrono::Utc::now())
                .await
            {
                tracing::warn!(error = %err, "could not record token use");
            }
            Ok(Caller { token: found })
        })
    }
}
