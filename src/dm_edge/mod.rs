//! The DM edge: runs the sans-IO engine (`crate::dm`) against the store for each device message.
//!
//! One call per HTTP request to `/dm`: decode, find the device and its open session, hand
//! both to the engine with the time and a nonce source, apply the effects it returns,
//! store the new session state (optimistically locked, so any replica can take any message),
//! and give the encoded reply back to the HTTP layer.

mod effects;
pub mod notify;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::dm::auth::{AuthType, CredentialHash, Nonce, NonceSource, StoredSecret};
use crate::dm::message::StatusCode;
use crate::dm::session::{
    self, ClientCredentials, DeviceRecord, Inbound, ServerConfig, ServerCredentials, SessionState,
};
use crate::dm::{DecodeError, Encoding, Limits};
use crate::store::{Device, DeviceSecrets, SessionUpdate, Store, StoreError};

/// The answer to one device message.
#[derive(Debug)]
pub struct DmReply {
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub hmac_header: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DmError {
    /// The bytes are not a SyncML message at all (or exceed the size limit).
    #[error("{0}")]
    NotSyncMl(DecodeError),
    /// Two replicas answered messages of one session at the same moment; the device retries.
    #[error("the session changed concurrently")]
    Busy,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for DmError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(_) => DmError::Busy,
            other => DmError::Store(other),
        }
    }
}

/// Nonces from the operating system's random source: the one piece of randomness the engine gets.
pub struct OsNonces;

impl NonceSource for OsNonces {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        getrandom::fill(dest).expect("the operating system's random source failed");
    }
}

#[derive(Clone)]
pub struct DmEdge {
    store: Store,
    server: ServerConfig,
    idle: chrono::Duration,
}

impl DmEdge {
    pub fn new(store: Store, config: &Config) -> DmEdge {
        let base = config.public_url();
        let server = ServerConfig {
            server_uri: format!("{base}/dm"),
            resp_uri_base: Some(format!("{base}/dm")),
            limits: Limits {
                max_message_bytes: config.dm.max_message_bytes,
                ..Limits::default()
            },
            max_obj_size: config.dm.max_object_bytes,
            ..ServerConfig::default()
        };
        DmEdge {
            store,
            server,
            idle: chrono::Duration::seconds(config.dm.session_idle_secs as i64),
        }
    }

    /// Closes sessions idle for longer than the configured timeout; returns how many.
    pub async fn expire_idle_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.store
            .sessions()
            .expire_idle(now - self.idle, now)
            .await
    }

    pub fn server_uri(&self) -> &str {
        &self.server.server_uri
    }

    pub fn limits(&self) -> &Limits {
        &self.server.limits
    }

    /// Answers one device message.
    pub async fn handle(
        &self,
        body: &[u8],
        hmac_header: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<DmReply, DmError> {
        let (message, encoding) =
            crate::dm::decode(body, &self.server.limits).map_err(DmError::NotSyncMl)?;
        let dev_id = message.hdr.source.loc_uri.trim().to_owned();
        let session_id = message.hdr.session_id.clone();

        let Some((device, secrets)) = self.store.devices().by_dev_id(&dev_id).await? else {
            tracing::warn!(device.dev_id = %dev_id, "DM message from an unknown device refused");
            let reply = session::refusal(
                &message,
                StatusCode::INVALID_CREDENTIALS,
                &self.server.server_uri,
            );
            return Ok(DmReply {
                body: crate::dm::encode(&reply, encoding),
                content_type: encoding.content_type(),
                hmac_header: None,
            });
        };
        let record = device_record(&device, &secrets);

        let stored = self.store.sessions().open(&device.id, &session_id).await?;
        let (state, version) = match stored {
            Some(s) if now - s.updated_at <= self.idle => {
                match SessionState::from_json(&s.state_json) {
                    Ok(state) => (state, Some((s.id, s.version))),
                    Err(err) => {
                        tracing::error!(device.id = %device.id, error = %err, "unreadable session state; starting over");
                        (SessionState::default(), None)
                    }
                }
            }
            Some(s) => {
                // Idle too long: close it and start a fresh session under the same id.
                self.store
                    .sessions()
                    .close(s.id, "idle_timeout", now)
                    .await?;
                tracing::info!(device.id = %device.id, session.row = s.id, "idle DM session expired");
                (SessionState::default(), None)
            }
            None => (SessionState::default(), None),
        };
        let queue = self.store.operations().queued_for(&device.id).await?;

        let inbound = Inbound {
            message: &message,
            encoding,
            body,
            hmac_header,
            device: &record,
            queue: &queue,
            server: &self.server,
        };
        let (outbound, effects) =
            session::handle(state, inbound, now.timestamp_millis(), &mut OsNonces);

        let summary = effects::apply(&self.store, &device, &session_id, &effects, now).await?;
        let update = SessionUpdate {
            state_json: outbound.state.to_json().expect("session state serialises"),
            encoding: encoding_name(encoding),
            auth_outcome: summary.auth_outcome,
            bytes_in: body.len() as u64,
            bytes_out: outbound.body.len() as u64,
            end_reason: outbound
                .session_over
                .then(|| summary.end_reason.unwrap_or_else(|| "completed".to_owned())),
        };
        match version {
            Some((id, version)) => {
                self.store
                    .sessions()
                    .advance(id, version, update, now)
                    .await?
            }
            None => {
                self.store
                    .sessions()
                    .start(&device.id, &session_id, update, now)
                    .await?;
            }
        }
        self.store.devices().touch(&device.id, now).await?;
        tracing::info!(
            device.id = %device.id,
            device.dev_id = %dev_id,
            session.id = %session_id,
            dm.encoding = encoding_name(encoding),
            size_bytes = outbound.body.len(),
            session.over = outbound.session_over,
            "DM message answered"
        );
        Ok(DmReply {
            body: outbound.body,
            content_type: outbound.content_type,
            hmac_header: outbound.hmac_header,
        })
    }
}

fn encoding_name(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Xml => "xml",
        Encoding::Wbxml => "wbxml",
    }
}

/// The engine's view of a device: credentials in stored (hashed) form and current nonces.
fn device_record(device: &Device, secrets: &DeviceSecrets) -> DeviceRecord {
    let nonce = |b64: &Option<String>| b64.as_deref().map(Nonce::from_next_nonce);
    DeviceRecord {
        dev_id: device.dev_id.clone(),
        client: Some(ClientCredentials {
            auth_type: device.client_auth_type,
            name: device.client_name.clone(),
            secret: StoredSecret::Hash(CredentialHash(secrets.client_secret_hash.clone())),
            nonce: nonce(&secrets.client_nonce),
        }),
        server: Some(ServerCredentials {
            auth_type: device.server_auth_type,
            name: device.server_name.clone(),
            secret: StoredSecret::Hash(CredentialHash(secrets.server_secret_hash.clone())),
            nonce: nonce(&secrets.server_nonce),
        }),
        large_object_support: device.inventory.large_objects,
        max_obj_size: device.inventory.max_obj_size,
    }
}

/// Server-to-device credentials must be computable from the stored hash: md5 and HMAC are,
/// basic would need the secret in clear, which Updraft never stores.
pub fn server_auth_supported(auth: AuthType) -> bool {
    !matches!(auth, AuthType::Basic)
}
