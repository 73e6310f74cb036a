//! Package 0 (notification-initiated sessions): build, deliver, and retrigger until the device connects.
//!
//! Transports: a device's own `push_url` (`http://…` gets the bytes in a POST body,
//! `udp://host:port` one datagram; for simulators and lab devices), else the configured
//! SMS/WAP-push gateway webhook, which receives JSON with the Package 0 and its WAP Push
//! framing ready to send (see `docs/package0-webhook.md`).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};

use secrecy::{ExposeSecret, SecretString};

use crate::config::Config;
use crate::dm::auth::{CredentialHash, Nonce};
use crate::dm::package0::{Initiator, NOTIFICATION_VERSION, Notification, UiMode, session_id_text};
use crate::dm::wap_push;
use crate::store::{Device, NotificationRecord, Store, StoreError, Tx};

/// Content type of a Package 0 pushed over HTTP.
pub const PACKAGE0_CONTENT_TYPE: &str = "application/vnd.syncml.notification";

/// One delivery attempt's bound (the HTTP client's timeout).
const ATTEMPT_TIMEOUT_SECS: u64 = 10;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("device has no push URL and no push webhook is configured")]
    NoTransport,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct Notifier {
    store: Store,
    http: reqwest::Client,
    webhook: Option<SecretString>,
    retry: Duration,
    max_attempts: u32,
}

impl Notifier {
    pub fn new(store: Store, config: &Config) -> Notifier {
        Notifier {
            store,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(ATTEMPT_TIMEOUT_SECS))
                .build()
                .expect("the HTTP client builds"),
            webhook: config.dm.push_webhook_url.clone(),
            retry: Duration::from_secs(config.dm.notification_retry_secs.max(1)),
            max_attempts: config.dm.notification_max_attempts.max(1),
        }
    }

    /// Queues a notification with a fresh session id and makes the first attempt now.
    pub async fn notify(
        &self,
        device: &Device,
        now: DateTime<Utc>,
    ) -> Result<NotificationRecord, NotifyError> {
        if device.push_url.is_none() && self.webhook.is_none() {
            return Err(NotifyError::NoTransport);
        }
        let session_id = fresh_session_id();
        // Created already claimed by this caller (the same lease the retrigger worker takes),
        // so no replica's worker sends it again while this first attempt is under way.
        let record = self
            .store
            .notifications()
            .create(&device.id, session_id, now, self.lease_until(now))
            .await?;
        self.attempt(&record, now).await?;
        Ok(self
            .store
            .notifications()
            .get(record.id)
            .await?
            .unwrap_or(record))
    }

    /// Whether a Package 0 can reach `device` at all (its own push URL, or the gateway).
    pub fn can_reach(&self, device: &Device) -> bool {
        device.push_url.is_some() || self.webhook.is_some()
    }

    /// Queues a notification inside `tx` (a unit of work that decided it), due at once: the
    /// retrigger worker of any replica sends it after the commit, so it is sent if and only if
    /// the decision is stored. `None` when no transport can reach the device.
    pub async fn queue_in(
        &self,
        tx: &Tx,
        device: &Device,
        now: DateTime<Utc>,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        if !self.can_reach(device) {
            return Ok(None);
        }
        let record = tx
            .notifications()
            .create(&device.id, fresh_session_id(), now, now)
            .await?;
        Ok(Some(record))
    }

    /// One pass of the retrigger worker: every due notification is sent again, closed when the
    /// device has opened its session, or expired after the last attempt.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let due = self
            .store
            .notifications()
            .claim_due(now, self.lease_until(now), 100)
            .await?;
        let count = due.len();
        for notification in due {
            self.attempt(&notification, now).await?;
        }
        Ok(count)
    }

    /// How long a claimed notification stays with its claimer: longer than one delivery
    /// attempt can take (the HTTP client's timeout), so no other replica sends it meanwhile.
    fn lease_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::seconds(ATTEMPT_TIMEOUT_SECS as i64 * 3)
    }

    async fn attempt(&self, n: &NotificationRecord, now: DateTime<Utc>) -> Result<(), StoreError> {
        let connected = self
            .store
            .sessions()
            .seen_since(&n.device_id, &session_id_text(n.session_id), n.created_at)
            .await?;
        if connected {
            return self
                .store
                .notifications()
                .finish(n.id, "connected", now)
                .await;
        }
        if n.attempts >= self.max_attempts as i32 {
            tracing::warn!(device.id = %n.device_id, notification.id = n.id, "device never answered its Package 0");
            return self
                .store
                .notifications()
                .finish(n.id, "expired", now)
                .await;
        }
        let Some(device) = self.store.devices().get(&n.device_id).await? else {
            return self
                .store
                .notifications()
                .finish(n.id, "expired", now)
                .await;
        };
        let Some(secrets) = self.store.devices().secrets(&n.device_id).await? else {
            return self
                .store
                .notifications()
                .finish(n.id, "expired", now)
                .await;
        };
        // The digest covers the device's current server nonce (brief 4.2); before the
        // device ever gave us one, the resynchronisation default is what it expects.
        let nonce = super::nonces::stored(
            &device.id,
            super::nonces::Slot::Server,
            secrets.server_nonce.as_deref(),
        )
        .unwrap_or_else(|| Nonce::resync_defaults()[0].clone());
        let bytes = Notification {
            version: NOTIFICATION_VERSION,
            ui_mode: UiMode::Background,
            initiator: Initiator::Server,
            session_id: n.session_id,
            server_id: device.server_name.clone(),
            vendor_specific: Vec::new(),
        }
        .build(
            &CredentialHash(secrets.server_secret_hash.clone()),
            &nonce.0,
        );
        let outcome = match bytes {
            Ok(bytes) => self.deliver(&device, n, &bytes).await,
            Err(err) => Err(format!("cannot build Package 0: {err}")),
        };
        let next = now + chrono::Duration::from_std(self.retry).unwrap_or_default();
        match &outcome {
            Ok(()) => {
                tracing::info!(device.id = %device.id, notification.id = n.id, session.id = n.session_id, attempt = n.attempts + 1, "Package 0 sent")
            }
            Err(e) => {
                tracing::warn!(device.id = %device.id, notification.id = n.id, error = %e, "Package 0 delivery failed")
            }
        }
        self.store
            .notifications()
            .attempted(n.id, outcome.err(), next, now)
            .await
    }

    async fn deliver(
        &self,
        device: &Device,
        n: &NotificationRecord,
        bytes: &[u8],
    ) -> Result<(), String> {
        if let Some(url) = &device.push_url {
            if let Some(addr) = url.strip_prefix("udp://") {
                let socket = tokio::net::UdpSocket::bind("0.0.0.0:0")
                    .await
                    .map_err(|e| e.to_string())?;
                socket
                    .send_to(bytes, addr)
                    .await
                    .map_err(|e| e.to_string())?;
                return Ok(());
            }
            return self
                .post(
                    url,
                    PACKAGE0_CONTENT_TYPE,
                    bytes.to_vec(),
                    "the device's push URL",
                )
                .await;
        }
        let Some(webhook) = &self.webhook else {
            return Err("no transport".into());
        };
        let pdu = wap_push::wsp_push_pdu(bytes);
        let payload = serde_json::json!({
            "device_id": device.id,
            "dev_id": device.dev_id,
            "msisdn": device.msisdn,
            "notification_id": n.id,
            "session_id": n.session_id,
            "package0": STANDARD.encode(bytes),
            "wap_push": {
                "wsp_pdu": STANDARD.encode(&pdu),
                "sms_user_data": wap_push::sms_user_data(&pdu, (n.id & 0xff) as u8)
                    .iter()
                    .map(|segment| STANDARD.encode(segment))
                    .collect::<Vec<_>>(),
            },
        });
        self.post(
            webhook.expose_secret(),
            "application/json",
            serde_json::to_vec(&payload).expect("JSON"),
            "the push webhook",
        )
        .await
    }

    /// POSTs `body`; an error names `what` was called, never its URL (URLs carry credentials).
    async fn post(
        &self,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
        what: &str,
    ) -> Result<(), String> {
        let response = self
            .http
            .post(url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("{what} failed: {}", e.without_url()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("{what} answered {}", response.status()))
        }
    }
}

/// A random session id for a Package 0; 0 reads as "none" on some clients, so never 0.
fn fresh_session_id() -> u16 {
    let mut id = [0u8; 2];
    getrandom::fill(&mut id).expect("the operating system's random source failed");
    u16::from_be_bytes(id).max(1)
}

/// The DM background worker: Package 0 retriggers every second, idle-session expiry
/// every 30 seconds, until `stop` fires. Safe to run on every replica at once.
pub async fn run_worker(
    notifier: Notifier,
    dm: super::DmEdge,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            _ = interval.tick() => {
                let now = Utc::now();
                if let Err(err) = notifier.tick(now).await {
                    tracing::error!(error = %err, "notification worker pass failed");
                }
                if ticks.is_multiple_of(30) {
                    match dm.expire_idle_sessions(now).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(sessions = n, "idle DM sessions closed"),
                        Err(err) => tracing::error!(error = %err, "idle session sweep failed"),
                    }
                }
                ticks += 1;
            }
            _ = stop.changed() => break,
        }
    }
}
