//! `Transport`: one HTTP POST per SyncML message. `HttpTransport` does it over reqwest; tests
//! plug in an in-memory peer.

use std::future::Future;
use std::time::Duration;

use super::SimError;

/// The `x-syncml-hmac` header name (brief 2.4).
pub const HMAC_HEADER: &str = "x-syncml-hmac";

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub url: String,
    pub content_type: String,
    pub body: Vec<u8>,
    /// `x-syncml-hmac` value, when the device authenticates with HMAC.
    pub hmac: Option<String>,
}

/// The server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    pub hmac: Option<String>,
}

/// Sends one device message and returns the server's reply. Non-200 statuses are returned,
/// not turned into errors: the session decides what they mean.
pub trait Transport: Send + Sync {
    fn post(&self, req: HttpRequest) -> impl Future<Output = Result<HttpReply, SimError>> + Send;
}

impl<T: Transport> Transport for std::sync::Arc<T> {
    fn post(&self, req: HttpRequest) -> impl Future<Output = Result<HttpReply, SimError>> + Send {
        (**self).post(req)
    }
}

/// HTTP over reqwest (plain HTTP; the crate is built without TLS).
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
}

impl HttpTransport {
    pub fn new(timeout: Duration) -> Result<Self, SimError> {
        crate::startup::install_tls_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("updraft-simulator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SimError::Config {
                reason: format!("HTTP client: {e}"),
            })?;
        Ok(Self { client })
    }
}

impl Transport for HttpTransport {
    async fn post(&self, req: HttpRequest) -> Result<HttpReply, SimError> {
        let fail = |e: reqwest::Error| SimError::Http {
            url: req.url.clone(),
            reason: e.to_string(),
        };
        let mut builder = self
            .client
            .post(&req.url)
            .header("Content-Type", &req.content_type)
            .header("Accept", &req.content_type)
            .header("Cache-Control", "private")
            .body(req.body.clone());
        if let Some(h) = &req.hmac {
            builder = builder.header(HMAC_HEADER, h);
        }
        let resp = builder.send().await.map_err(fail)?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let status = resp.status().as_u16();
        let content_type = header("content-type");
        let hmac = header(HMAC_HEADER);
        let body = resp.bytes().await.map_err(fail)?.to_vec();
        Ok(HttpReply {
            status,
            content_type,
            body,
            hmac,
        })
    }
}
