//! The device's HTTP download of a FUMO PkgURL: Range requests of a configurable chunk size,
//! resumed from the last byte received after a dropped connection (`If-Range` with the
//! first response's ETag, so a changed file restarts instead of being spliced), capped at the
//! length the package declares and at the device's storage.

use std::time::Duration;

use futures_util::StreamExt;

use super::firmware::{declared_len, result};

/// How the device downloads.
#[derive(Debug, Clone)]
pub struct DownloadOptions {
    /// Bytes asked for per Range request.
    pub chunk_size: u64,
    /// The most the device can store (its MaxObjSize); a larger package is 501.
    pub max_bytes: u64,
    /// Resumptions allowed after dropped connections before giving up with 503.
    pub max_resumes: u32,
    /// Fault injection: drop the connection after this many bytes (then resume), …
    pub drop_after: Option<u64>,
    /// … this many times.
    pub drops: u32,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        Self {
            chunk_size: 256 * 1024,
            max_bytes: 64 * 1024 * 1024,
            max_resumes: 8,
            drop_after: None,
            drops: 0,
        }
    }
}

/// A finished or failed download: the bytes, what crossed the wire, and how often it resumed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Downloaded {
    pub bytes: Vec<u8>,
    /// Body bytes received, resumed and discarded ones included.
    pub wire_bytes: u64,
    pub requests: u32,
    pub resumes: u32,
}

/// Why a download ended without a package: the FUMO code and a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadFailed {
    pub code: u16,
    pub reason: String,
    pub wire_bytes: u64,
}

/// The FUMO code for an HTTP status the download server answered (brief 5.5).
pub fn code_for_status(status: u16) -> u16 {
    match status {
        401 | 403 | 410 => 406, // alternate download authentication failure (token refused/expired)
        404 => result::BAD_URL,
        408 | 504 => result::DOWNLOAD_TIMEOUT,
        500..=599 => result::SERVER_UNAVAILABLE,
        _ => 409,
    }
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `Content-Range: bytes a-b/total` → total.
fn range_total(value: &str) -> Option<u64> {
    value.rsplit('/').next()?.trim().parse().ok()
}

/// Downloads `url` into memory.
pub async fn download(
    client: &reqwest::Client,
    url: &str,
    opts: &DownloadOptions,
) -> Result<Downloaded, DownloadFailed> {
    let mut got = Downloaded::default();
    let mut etag: Option<String> = None;
    let mut total: Option<u64> = None;
    let mut drops_left = if opts.drop_after.is_some() {
        opts.drops
    } else {
        0
    };
    let mut since_drop = 0u64;
    let fail = |got: &Downloaded, code: u16, reason: String| DownloadFailed {
        code,
        reason,
        wire_bytes: got.wire_bytes,
    };
    let chunk = opts.chunk_size.max(1);
    loop {
        let offset = got.bytes.len() as u64;
        let limit = total.unwrap_or(opts.max_bytes + 1);
        if offset >= limit {
            break;
        }
        let end = (offset + chunk).min(limit) - 1;
        let mut req = client
            .get(url)
            .header("Range", format!("bytes={offset}-{end}"))
            .timeout(Duration::from_secs(60));
        if let Some(tag) = &etag {
            req = req.header("If-Range", tag);
        }
        got.requests += 1;
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Err(fail(&got, result::DOWNLOAD_TIMEOUT, e.to_string()));
            }
            Err(e) => return Err(fail(&got, result::NETWORK_FAILURE, e.to_string())),
        };
        let status = resp.status().as_u16();
        match status {
            206 => {
                let Some(t) = header(&resp, "content-range").and_then(|v| range_total(&v)) else {
                    return Err(fail(&got, 409, "206 without Content-Range".into()));
                };
                if t > opts.max_bytes {
                    return Err(fail(
                        &got,
                        result::DOWNLOAD_OUT_OF_MEMORY,
                        format!(
                            "package of {t} bytes exceeds the device's {}",
                            opts.max_bytes
                        ),
                    ));
                }
                total = Some(total.map_or(t, |d: u64| d.min(t)));
            }
            // The server ignored Range (or If-Range said the file changed): start over.
            200 => {
                got.bytes.clear();
                if let Some(len) = resp.content_length()
                    && len > opts.max_bytes
                {
                    return Err(fail(
                        &got,
                        result::DOWNLOAD_OUT_OF_MEMORY,
                        format!(
                            "package of {len} bytes exceeds the device's {}",
                            opts.max_bytes
                        ),
                    ));
                }
            }
            416 if total.is_some() => break,
            s => {
                return Err(fail(
                    &got,
                    code_for_status(s),
                    format!("HTTP {s} from {url}"),
                ));
            }
        }
        if etag.is_none() {
            etag = header(&resp, "etag");
        }
        let mut body = resp.bytes_stream();
        let mut cut = false;
        while let Some(part) = body.next().await {
            let part = match part {
                Ok(p) => p,
                Err(_) => {
                    cut = true;
                    break;
                }
            };
            // An injected cut lands inside this part: the device reads up to it, then the
            // connection is gone (the rest of the response is never read).
            let mut part = &part[..];
            let mut cut_here = false;
            if drops_left > 0
                && let Some(d) = opts.drop_after
                && since_drop + part.len() as u64 >= d
            {
                part = &part[..(d - since_drop) as usize];
                cut_here = true;
            }
            got.wire_bytes += part.len() as u64;
            since_drop += part.len() as u64;
            let room = total.unwrap_or(opts.max_bytes + 1) - got.bytes.len() as u64;
            let take = (part.len() as u64).min(room) as usize;
            got.bytes.extend_from_slice(&part[..take]);
            if take < part.len() && total.is_none() {
                return Err(fail(
                    &got,
                    result::DOWNLOAD_OUT_OF_MEMORY,
                    "package larger than the device's storage".into(),
                ));
            }
            // Once header and manifest are in, the package says how long it is: never
            // read past that (brief: endless-data attack), whatever the server sends.
            if let Some(declared) = declared_len(&got.bytes) {
                let declared = declared.map_err(|r| fail(&got, r.code, r.reason))?;
                if total.is_some_and(|t| t > declared) {
                    return Err(fail(
                        &got,
                        result::CORRUPTED,
                        format!("server offers {total:?} bytes, the package declares {declared}"),
                    ));
                }
                total = Some(total.map_or(declared, |t| t.min(declared)));
                got.bytes.truncate(declared as usize);
            }
            if cut_here {
                drops_left -= 1;
                since_drop = 0;
                cut = true;
                break;
            }
            if total.is_some_and(|t| got.bytes.len() as u64 >= t) {
                break;
            }
        }
        if cut {
            got.resumes += 1;
            if got.resumes > opts.max_resumes {
                return Err(fail(&got, result::NETWORK_FAILURE, "too many drops".into()));
            }
        }
        if status == 200 && !cut && total.is_none() {
            break;
        }
    }
    Ok(got)
}
