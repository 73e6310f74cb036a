//! A deliberately tiny HTTP/1.1 server side: read one request (Content-Length bodies only),
//! write one response, close. Enough for Package 0 pushes; not a general web server.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::SimError;

/// Largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn bad(reason: impl Into<String>) -> SimError {
    SimError::Io {
        reason: reason.into(),
    }
}

/// Reads one request; bodies over `max_body` bytes are refused.
pub(crate) async fn read_request(
    s: &mut (impl AsyncRead + Unpin),
    max_body: usize,
) -> Result<Request, SimError> {
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        if buf.len() > MAX_HEAD {
            return Err(bad("request head too large"));
        }
        let mut chunk = [0u8; 2048];
        let n = s.read(&mut chunk).await.map_err(|e| SimError::io(&e))?;
        if n == 0 {
            return Err(bad("connection closed before the request head ended"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("non-UTF-8 head"))?;
    let mut lines = head.split("\r\n");
    let mut start = lines.next().unwrap_or_default().split_whitespace();
    let method = start.next().unwrap_or_default().to_owned();
    let path = start.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut req = Request {
        method,
        path,
        headers,
        body: buf[head_end + 4..].to_vec(),
    };
    let len: usize = match req.header("content-length") {
        Some(v) => v.parse().map_err(|_| bad("bad Content-Length"))?,
        None => 0,
    };
    if len > max_body {
        return Err(bad(format!(
            "body of {len} bytes over the {max_body} limit"
        )));
    }
    while req.body.len() < len {
        let mut chunk = vec![0u8; (len - req.body.len()).min(64 * 1024)];
        let n = s.read(&mut chunk).await.map_err(|e| SimError::io(&e))?;
        if n == 0 {
            return Err(bad("connection closed inside the body"));
        }
        req.body.extend_from_slice(&chunk[..n]);
    }
    req.body.truncate(len);
    Ok(req)
}

/// Writes a complete response and flushes it (`Connection: close`).
pub(crate) async fn write_response(
    s: &mut (impl AsyncWrite + Unpin),
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(), SimError> {
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Status",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())
        .await
        .map_err(|e| SimError::io(&e))?;
    s.write_all(body).await.map_err(|e| SimError::io(&e))?;
    s.flush().await.map_err(|e| SimError::io(&e))
}
