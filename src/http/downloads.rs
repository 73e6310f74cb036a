//! The device-facing download routes, outside `/api/v1`: the URL is the credential.
//!
//! `GET|HEAD /dl/{token}` serves the package (one `Range` as 206, `If-Range`, 416),
//! `GET /dl/{token}/dd` its OMA Download descriptor, `POST /dl/{token}/notify` takes
//! the device's install status. Decisions live in `crate::downloads`; this maps them
//! to HTTP. Tokens are never logged (the access log redacts `/dl/` paths).

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody, SizedStream};
use actix_web::http::{Method, header};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use bytes::Bytes;
use futures_util::TryStreamExt;

use crate::blob::BlobError;
use crate::downloads::range::{self, Plan, Validators};
use crate::downloads::{DownloadError, Downloads, InstallError, descriptor};
use crate::http::AppState;

/// Largest install-notify body read (a status line is a few dozen bytes).
const NOTIFY_LIMIT: usize = 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/dl/{token}")
            .route(web::get().to(download))
            .route(web::head().to(download)),
    )
    .service(web::resource("/dl/{token}/dd").route(web::get().to(download_descriptor)))
    .service(
        web::resource("/dl/{token}/notify")
            .app_data(web::PayloadConfig::new(NOTIFY_LIMIT))
            .route(web::post().to(install_notify)),
    );
}

/// The access log's view of a path: a download token is a credential.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix("/dl/") {
        Some(rest) => {
            let tail = rest.find('/').map_or("", |at| &rest[at..]);
            format!("/dl/{{token}}{tail}").into()
        }
        None => path.into(),
    }
}

fn text(mut builder: HttpResponseBuilder, message: String) -> HttpResponse {
    builder
        .content_type("text/plain; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(message + "\n")
}

fn refusal(err: DownloadError) -> HttpResponse {
    match err {
        DownloadError::Forbidden => text(HttpResponse::Forbidden(), err.to_string()),
        DownloadError::Expired(_) | DownloadError::PackageGone(_) => {
            text(HttpResponse::Gone(), err.to_string())
        }
        DownloadError::Blob(BlobError::NotFound) => text(
            HttpResponse::Gone(),
            "the package file is no longer available".into(),
        ),
        DownloadError::Store(_) | DownloadError::Blob(_) => {
            // Logged once, here, where it becomes a response; no token in it.
            tracing::error!(error = %err, "download failed");
            text(
                HttpResponse::InternalServerError(),
                "download failed; try again".into(),
            )
        }
    }
}

fn token_of(req: &HttpRequest) -> &str {
    req.match_info().get("token").unwrap_or("")
}

fn header_str(req: &HttpRequest, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn download(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let downloads: &Downloads = &state.downloads;
    let auth = match downloads
        .authorize(token_of(&req), chrono::Utc::now())
        .await
    {
        Ok(auth) => auth,
        Err(err) => return refusal(err),
    };
    let is_head = req.method() == Method::HEAD;
    // A presigned URL is signed for GET: a HEAD is answered here, from the record.
    if !is_head {
        match downloads.redirect(&auth).await {
            Ok(Some(url)) => {
                return HttpResponse::TemporaryRedirect()
                    .insert_header((header::LOCATION, url))
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .finish();
            }
            Ok(None) => {}
            Err(err) => return refusal(err),
        }
    }

    let size = auth.package.size;
    let etag = auth.etag();
    let last_modified = auth.package.created_at;
    let plan = range::plan(
        size,
        header_str(&req, header::RANGE),
        header_str(&req, header::IF_RANGE),
        Validators {
            etag: &etag,
            last_modified: last_modified.timestamp(),
        },
    );
    let mut builder = match plan {
        Plan::Full => HttpResponse::Ok(),
        Plan::Partial { start, end } => {
            let mut b = HttpResponse::PartialContent();
            b.insert_header((header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}")));
            b
        }
        Plan::Unsatisfiable => {
            return HttpResponse::RangeNotSatisfiable()
                .insert_header((header::CONTENT_RANGE, format!("bytes */{size}")))
                .insert_header((header::ACCEPT_RANGES, "bytes"))
                .insert_header((header::ETAG, etag))
                .finish();
        }
    };
    builder
        .content_type("application/octet-stream")
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::ETAG, etag))
        .insert_header((
            header::LAST_MODIFIED,
            header::HttpDate::from(std::time::SystemTime::from(last_modified)),
        ))
        // Intermediaries must not re-encode a signed package.
        .insert_header((header::CACHE_CONTROL, "private, no-transform"));
    let len = plan.body_len(size);
    if is_head || len == 0 {
        return builder.body(HeadBody(len));
    }
    let start = match plan {
        Plan::Partial { start, .. } => start,
        _ => 0,
    };
    match downloads.body(&auth, start..start + len).await {
        Ok(body) => builder.body(SizedStream::new(len, body.map_err(std::io::Error::other))),
        Err(err) => refusal(err),
    }
}

/// A body of a known length that is never sent: HEAD, and empty files.
struct HeadBody(u64);

impl MessageBody for HeadBody {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.0)
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Poll::Ready(None)
    }
}

async fn download_descriptor(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let token = token_of(&req);
    match state.downloads.authorize(token, chrono::Utc::now()).await {
        Ok(auth) => HttpResponse::Ok()
            .content_type(descriptor::CONTENT_TYPE)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(state.downloads.descriptor(&auth, token)),
        Err(err) => refusal(err),
    }
}

async fn install_notify(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    match state
        .downloads
        .record_install(token_of(&req), &body, chrono::Utc::now())
        .await
    {
        Ok((grant, status)) => {
            tracing::info!(
                job.key = %grant.job_key,
                package.id = grant.package_id,
                install.status = status.code,
                "install notification recorded"
            );
            HttpResponse::Ok().finish()
        }
        Err(InstallError::Forbidden) => text(
            HttpResponse::Forbidden(),
            "this download link is not valid".into(),
        ),
        Err(err @ InstallError::BadStatus(_)) => text(HttpResponse::BadRequest(), err.to_string()),
        Err(InstallError::Store(err)) => {
            tracing::error!(error = %err, "recording an install notification failed");
            text(
                HttpResponse::InternalServerError(),
                "could not record the status; try again".into(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn tokens_never_reach_the_log() {
        assert_eq!(loggable_path("/dl/SECRET"), "/dl/{token}");
        assert_eq!(loggable_path("/dl/SECRET/notify"), "/dl/{token}/notify");
        assert_eq!(loggable_path("/api/v1/devices"), "/api/v1/devices");
    }
}
