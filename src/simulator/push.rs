//! Package 0 delivery to simulated devices: a UDP listener (one datagram = one Package 0) and
//! an HTTP listener (POST body = Package 0; `/push/{dev_id}` addresses one device, any other
//! path every device). A device whose server id matches and whose digest verifies opens the
//! server-initiated session (Alert 1200) at once.

use std::sync::Arc;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Mutex, mpsc};

use super::SimError;
use super::device::SimDevice;
use super::http1::{read_request, write_response};
use super::package0::NotificationError;
use super::session::{ClientSession, Initiation, SessionOptions, SessionReport};
use super::transport::Transport;

/// What happened to one notification at one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEvent {
    pub dev_id: String,
    /// The session id of the accepted notification, or why it was refused.
    pub notification: Result<u16, NotificationError>,
    /// The session it triggered (absent when refused).
    pub report: Option<SessionReport>,
}

/// The devices a listener serves and how their sessions reach the server.
pub struct PushTarget<T> {
    pub devices: Vec<Arc<Mutex<SimDevice>>>,
    pub transport: Arc<T>,
    pub server_url: String,
    pub options: SessionOptions,
    /// Every accepted or refused notification is reported here (refusals for another
    /// server id are not: the datagram simply was not for that device).
    pub events: mpsc::UnboundedSender<PushEvent>,
}

impl<T: Transport + 'static> PushTarget<T> {
    /// Offers `bytes` to the devices (only `dev_id` when given); each device that accepts
    /// starts its session in a task. Returns how many accepted.
    pub async fn deliver(&self, bytes: &[u8], dev_id: Option<&str>) -> usize {
        let mut accepted = 0;
        for dev in &self.devices {
            let mut d = dev.lock().await;
            // A switched-off device never sees the datagram.
            if d.offline || dev_id.is_some_and(|id| id != d.profile.dev_id) {
                continue;
            }
            let id = d.profile.dev_id.clone();
            match d.accept_notification(bytes) {
                Ok(session_id) => {
                    accepted += 1;
                    drop(d);
                    self.spawn_session(dev.clone(), id, session_id);
                }
                Err(NotificationError::UnknownServer { .. }) if dev_id.is_none() => {}
                Err(e) => {
                    tracing::warn!(device.id = %id, "Package 0 refused: {e}");
                    let _ = self.events.send(PushEvent {
                        dev_id: id,
                        notification: Err(e),
                        report: None,
                    });
                }
            }
        }
        accepted
    }

    fn spawn_session(&self, dev: Arc<Mutex<SimDevice>>, dev_id: String, session_id: u16) {
        let transport = self.transport.clone();
        let url = self.server_url.clone();
        let opts = self.options;
        let events = self.events.clone();
        tokio::spawn(async move {
            let mut d = dev.lock().await;
            // Consumed here so that a repeated trigger does not start a second session.
            if d.pending_notification.take() != Some(session_id) {
                return;
            }
            let mut s = ClientSession::new(&mut d, url, Initiation::Server { session_id }, opts);
            let _ = s.run(&*transport).await;
            let _ = events.send(PushEvent {
                dev_id,
                notification: Ok(session_id),
                report: Some(s.into_report()),
            });
        });
    }
}

/// Serves Package 0 datagrams until the socket fails.
pub async fn serve_udp_push<T: Transport + 'static>(
    socket: UdpSocket,
    target: Arc<PushTarget<T>>,
) -> Result<(), SimError> {
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, from) = socket
            .recv_from(&mut buf)
            .await
            .map_err(|e| SimError::io(&e))?;
        let n = target.deliver(&buf[..n], None).await;
        tracing::debug!(peer = %from, accepted = n, "UDP Package 0");
    }
}

/// Serves `POST` pushes until the listener fails: 202 when a device accepted, 403 when none
/// did, 404 for an unknown `/push/{dev_id}`, 400 for anything unreadable.
pub async fn serve_http_push<T: Transport + 'static>(
    listener: TcpListener,
    target: Arc<PushTarget<T>>,
) -> Result<(), SimError> {
    loop {
        let (mut stream, _) = listener.accept().await.map_err(|e| SimError::io(&e))?;
        let target = target.clone();
        tokio::spawn(async move {
            let status = match read_request(&mut stream, 4096).await {
                Ok(req) if req.method == "POST" => {
                    let dev_id = req.path.strip_prefix("/push/").map(percent_decode);
                    let known = match &dev_id {
                        Some(id) => {
                            let mut found = false;
                            for d in &target.devices {
                                found |= d.lock().await.profile.dev_id == *id;
                            }
                            found
                        }
                        None => true,
                    };
                    if !known {
                        404
                    } else if target.deliver(&req.body, dev_id.as_deref()).await > 0 {
                        202
                    } else {
                        403
                    }
                }
                _ => 400,
            };
            let _ = write_response(&mut stream, status, &[], &[]).await;
        });
    }
}

/// `%3A` → `:` in a path segment (device ids like `IMEI:…` may arrive escaped).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent_decoding_of_device_ids() {
        assert_eq!(super::percent_decode("IMEI%3A1%2"), "IMEI:1%2");
        assert_eq!(super::percent_decode("dev1"), "dev1");
    }
}
