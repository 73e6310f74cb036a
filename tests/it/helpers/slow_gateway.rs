//! A slow SMS/WAP-push gateway for notification tests: it answers after a fixed delay.
//!
//! The delay is the condition under test (an attempt that outlasts the retry interval),
//! which is why this file may sleep (see tidy's MAY_SLEEP).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A slow gateway: answers every request with `status` after `delay`, recording when each
/// request started and ended (requests are served concurrently).
pub async fn slow_gateway(
    status: u16,
    delay: Duration,
) -> (String, Arc<Mutex<Vec<(Instant, Instant)>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let record = calls.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head and the announced body.
                loop {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map(|v| v.trim().parse().unwrap())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                tokio::time::sleep(delay).await;
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = conn.write_all(reply.as_bytes()).await;
                record.lock().unwrap().push((start, Instant::now()));
            });
        }
    });
    // The credential is in the URL, as gateways commonly take it.
    let url = format!("http://gw-user:gw-password@{addr}/push?api_key=SECRET-KEY-123");
    (url, calls)
}
