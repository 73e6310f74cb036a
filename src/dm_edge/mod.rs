//! The DM edge: runs the sans-IO engine (`crate::dm`) against the store for each device message.
//!
//! One call per HTTP request to `/dm`: decode, find the device and its open session, hand
//! both to the engine with the time and a nonce source, apply the effects it returns,
//! store the new session state (optimistically locked, so any replica can take any message),
//! and give the encoded reply back to the HTTP layer.

mod effects;
mod nonces;
pub mod notify;
mod objects;

use chrono::{DateTime, Utc};

use crate::blob::{BlobError, BlobStore};
use crate::config::Config;
use crate::dm::auth::{AuthType, CredentialHash, NonceSource, StoredSecret};
use crate::dm::message::StatusCode;
use crate::dm::message::SyncML;
use crate::dm::session::Operation;
use crate::dm::session::{
    self, CachedReply, ClientCredentials, DeviceRecord, Inbound, Replay, ServerConfig,
    ServerCredentials, SessionState, Window,
};
use crate::dm::{DecodeError, Encoding, Limits};
use crate::store::{Device, DeviceSecrets, NewOperation, SessionUpdate, Store, StoreError};

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
    /// The blob store failed while reading a value for the reply or publishing a result.
    #[error(transparent)]
    Blob(BlobError),
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
    blobs: BlobStore,
    server: ServerConfig,
    idle: chrono::Duration,
    /// `dm.read_inventory`: devices with an unknown FwV get DevDetail read once.
    read_inventory: bool,
    /// Update jobs learn the facts of each message and queue their commands in it.
    updates: Option<crate::updates::Updates>,
}

impl DmEdge {
    pub fn new(store: Store, blobs: BlobStore, config: &Config) -> DmEdge {
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
            blobs,
            server,
            idle: chrono::Duration::seconds(config.dm.session_idle_secs as i64),
            read_inventory: config.dm.read_inventory,
            updates: None,
        }
    }

    /// Drives update jobs from the device's messages.
    /// A device whose firmware version is unknown (its Package 1 carries DevInfo, not
    /// DevDetail) gets its `./DevDetail/FwV`, `SwV` and `HwV` read once, at the start of a
    /// session: campaigns select devices and form cohorts by these.
    async fn read_inventory_once(
        &self,
        device: &Device,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if !self.read_inventory || device.inventory.fw_version.is_some() {
            return Ok(());
        }
        let owner = format!("inventory:{}", device.id);
        if !self.store.operations().owned_by(&owner).await?.is_empty() {
            return Ok(());
        }
        for leaf in ["FwV", "SwV", "HwV"] {
            self.store
                .operations()
                .enqueue_new(
                    NewOperation {
                        device_id: &device.id,
                        operation: &Operation::Get {
                            uri: format!("./DevDetail/{leaf}"),
                        },
                        sequence_group: None,
                        owner: Some(owner.clone()),
                    },
                    now,
                )
                .await?;
        }
        Ok(())
    }

    pub fn with_updates(mut self, updates: crate::updates::Updates) -> DmEdge {
        self.updates = Some(updates);
        self
    }

    /// Closes sessions idle for longer than the configured timeout, and expires the
    /// operations they left awaiting a status; returns how many sessions.
    pub async fn expire_idle_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let tx = self.store.begin().await?;
        let closed = tx.sessions().expire_idle(now - self.idle, now).await?;
        let expired = tx.operations().expire_orphaned(now).await?;
        tx.commit().await?;
        if expired > 0 {
            tracing::info!(
                operations = expired,
                "operations of ended DM sessions expired"
            );
        }
        Ok(closed)
    }

    pub fn server_uri(&self) -> &str {
        &self.server.server_uri
    }

    pub fn limits(&self) -> &Limits {
        &self.server.limits
    }

    /// Answers one device message. `resp_token` is the `s` query parameter of the request URL:
    /// the per-session token our RespURI carries.
    ///
    /// The message is one atomic step: the engine runs on what was read, then one transaction
    /// takes the device's message step (the optimistic lock, first), applies every effect and
    /// writes the session row. A replica that loses the race for the same message writes
    /// nothing and answers with the reply the winner stored.
    pub async fn handle(
        &self,
        body: &[u8],
        hmac_header: Option<&str>,
        resp_token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<DmReply, DmError> {
        let (message, encoding) =
            crate::dm::decode(body, &self.server.limits).map_err(DmError::NotSyncMl)?;
        // One retry: the first attempt may have lost a race to another message of the device.
        match self
            .step(&message, encoding, body, hmac_header, resp_token, now)
            .await
        {
            Err(DmError::Busy) => {
                self.step(&message, encoding, body, hmac_header, resp_token, now)
                    .await
            }
            other => other,
        }
    }

    async fn step(
        &self,
        message: &SyncML,
        encoding: Encoding,
        body: &[u8],
        hmac_header: Option<&str>,
        resp_token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<DmReply, DmError> {
        let dev_id = message.hdr.source.loc_uri.trim().to_owned();
        let session_id = message.hdr.session_id.clone();
        let msg_id = message.hdr.msg_id.0.trim();
        let refuse = |status: StatusCode| DmReply {
            body: crate::dm::encode(
                &session::refusal(message, status, &self.server.server_uri),
                encoding,
            ),
            content_type: encoding.content_type(),
            hmac_header: None,
        };

        let Some((device, secrets)) = self.store.devices().by_dev_id(&dev_id).await? else {
            tracing::warn!(device.dev_id = %dev_id, "DM message from an unknown device refused");
            return Ok(refuse(StatusCode::INVALID_CREDENTIALS));
        };
        let record = device_record(&device, &secrets);
        let request_md5 = crate::dm::auth::md5_b64(body);

        // The session this message continues, if any; what must be closed before it starts.
        let mut close_first: Option<(i64, &'static str)> = None;
        let mut state = SessionState::default();
        let mut version = None;
        if let Some(s) = self.store.sessions().open(&device.id, &session_id).await? {
            let loaded = match SessionState::from_json(&s.state_json) {
                Ok(loaded) => loaded,
                Err(err) => {
                    // Nothing of it can be trusted: refuse, and close it so the device's next
                    // session starts clean.
                    tracing::error!(device.id = %device.id, session.row = s.id, error = %err, "unreadable DM session state; session closed, message refused");
                    let tx = self.store.begin().await?;
                    tx.sessions().close(s.id, "corrupt_state", now).await?;
                    tx.operations()
                        .expire_session(s.id, "the session's state was unreadable", now)
                        .await?;
                    tx.commit().await?;
                    return Ok(refuse(StatusCode::COMMAND_FAILED));
                }
            };
            let repeat = matches!(
                session::classify_replay(&loaded, msg_id, &request_md5),
                Replay::Repeat(_)
            );
            if now - s.updated_at > self.idle {
                tracing::info!(device.id = %device.id, session.row = s.id, "idle DM session expired");
                close_first = Some((s.id, "idle_timeout"));
            } else if msg_id == "1" && !repeat {
                // A first message under a SessionID still open: the device started over.
                close_first = Some((s.id, "superseded"));
            } else if msg_id == "1"
                && let Some(cached) = &loaded.last_reply
            {
                // Package 1 again (its reply was lost): it never had our RespURI.
                return Ok(cached_reply(cached, encoding));
            } else if !self.token_accepted(&device, &loaded, resp_token) {
                tracing::warn!(
                    device.id = %device.id,
                    session.id = %session_id,
                    dm.msg_id = msg_id,
                    token.present = resp_token.is_some(),
                    "DM message of a live session without its RespURI token refused"
                );
                return Ok(refuse(StatusCode::FORBIDDEN));
            } else {
                match session::classify_replay(&loaded, msg_id, &request_md5) {
                    Replay::Repeat(cached) => return Ok(cached_reply(cached, encoding)),
                    Replay::Stale => {
                        tracing::warn!(device.id = %device.id, session.id = %session_id, dm.msg_id = msg_id, "DM message older than the last one answered refused");
                        return Ok(refuse(StatusCode::BAD_REQUEST));
                    }
                    Replay::Fresh => {}
                }
                state = loaded;
                version = Some((s.id, s.version));
            }
        } else if msg_id != "1" {
            // The device repeating the message whose reply ended the session (that reply was
            // lost): the same reply again.
            if let Some(s) = self
                .store
                .sessions()
                .latest(&device.id, &session_id)
                .await?
                && let Ok(ended) = SessionState::from_json(&s.state_json)
                && let Replay::Repeat(cached) =
                    session::classify_replay(&ended, msg_id, &request_md5)
                && cached.request_md5 == request_md5
                && self.token_accepted(&device, &ended, resp_token)
            {
                return Ok(cached_reply(cached, encoding));
            }
            // No live session for a later message: an expired session or a forged token.
            tracing::warn!(device.id = %device.id, session.id = %session_id, dm.msg_id = msg_id, "DM message for no open session refused");
            return Ok(refuse(StatusCode::NOT_FOUND));
        }

        if version.is_none() {
            self.read_inventory_once(&device, now).await?;
        }
        let open_row = version.map(|(row, _)| row);
        let mut queue = self
            .store
            .operations()
            .queued_for(&device.id, open_row)
            .await?;
        let window_bytes = self
            .window_for(&device, &state, message, &mut queue, true, now)
            .await?;
        let state_before = state.clone();
        let (mut outbound, mut effects) = self.run_engine(
            state,
            message,
            encoding,
            body,
            hmac_header,
            &record,
            &queue,
            window_bytes.as_ref(),
            now,
        );
        // What the message told the device's update job, decided before anything is written.
        let mut plan = None;
        if let Some(updates) = &self.updates
            && let Some(job) = updates.active_job(&device.id).await?
        {
            plan = updates
                .plan(
                    &device,
                    job,
                    version.is_none(),
                    &effects,
                    outbound.session_over,
                    now,
                )
                .await?;
        }

        let tx = self.store.begin().await?;
        // The optimistic check first: it is also the write that serialises this device's
        // messages, so nothing below can interleave with another replica's step.
        if !tx
            .devices()
            .take_message_step(&device.id, device.message_seq, now)
            .await?
        {
            drop(tx);
            return self
                .lost_race(&device, &session_id, msg_id, &request_md5, encoding)
                .await;
        }
        if let Some((row, reason)) = close_first {
            tx.sessions().close(row, reason, now).await?;
            tx.operations()
                .expire_session(row, "the session ended without a status", now)
                .await?;
        }
        if let (Some(updates), Some(plan)) = (&self.updates, plan) {
            let added = updates.commit_plan(&tx, &device, plan, now).await?;
            if !added.is_empty() {
                // The job queued commands on what this message said: answer it again with
                // them in the queue, so this very reply carries them (same input, same state;
                // only the second answer's effects are kept).
                queue.extend(added);
                let window_bytes = self
                    .window_for(&device, &state_before, message, &mut queue, false, now)
                    .await?;
                (outbound, effects) = self.run_engine(
                    state_before,
                    message,
                    encoding,
                    body,
                    hmac_header,
                    &record,
                    &queue,
                    window_bytes.as_ref(),
                    now,
                );
            }
        }
        let summary = effects::apply(&tx, &self.blobs, &device, &session_id, &effects, now).await?;
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
        let row = match version {
            Some((id, version)) => {
                tx.sessions().advance(id, version, update, now).await?;
                id
            }
            None => {
                tx.sessions()
                    .start(&device.id, &session_id, update, now)
                    .await?
            }
        };
        // A command cancelled since the queue was read conflicts here: the whole step is
        // retried on the new queue, so a cancelled command is never sent.
        for id in &summary.sent {
            tx.operations()
                .mark_sent(*id, row, &session_id, now)
                .await?;
        }
        if outbound.session_over {
            tx.operations()
                .expire_session(row, "the session ended without a status", now)
                .await?;
        }
        tx.commit().await?;
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

    /// Runs the engine on one message.
    #[allow(clippy::too_many_arguments)]
    fn run_engine(
        &self,
        state: SessionState,
        message: &SyncML,
        encoding: Encoding,
        body: &[u8],
        hmac_header: Option<&str>,
        record: &DeviceRecord,
        queue: &[session::QueuedOperation],
        window: Option<&(session::WindowRequest, Vec<u8>)>,
        now: DateTime<Utc>,
    ) -> (session::Outbound, Vec<session::Effect>) {
        let inbound = Inbound {
            message,
            encoding,
            body,
            hmac_header,
            device: record,
            queue,
            window: window.map(|(r, bytes)| Window {
                op_id: &r.op_id,
                offset: r.offset,
                bytes,
            }),
            server: &self.server,
        };
        session::handle(state, inbound, now.timestamp_millis(), &mut OsNonces)
    }

    /// The object bytes the reply may carry: one message's worth, never a value whole. A
    /// queued operation whose value is gone is dropped from `queue` (and failed when
    /// `may_write`, i.e. outside the message's transaction).
    async fn window_for(
        &self,
        device: &Device,
        state: &SessionState,
        message: &SyncML,
        queue: &mut Vec<session::QueuedOperation>,
        may_write: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<(session::WindowRequest, Vec<u8>)>, DmError> {
        let Some(request) = session::window_request(state, message, queue, &self.server) else {
            return Ok(None);
        };
        let queued = queue
            .iter()
            .find(|q| q.id == request.op_id)
            .map(|q| q.operation.clone());
        match objects::read_window(&self.store, &self.blobs, &request, queued.as_ref()).await? {
            objects::WindowRead::Bytes(bytes) => Ok(Some((request, bytes))),
            objects::WindowRead::Missing(why) => {
                // A queued operation whose value is gone fails now; one in flight is
                // abandoned by the engine, which finds no window for it.
                tracing::error!(device.id = %device.id, dm.op_id = %request.op_id, reason = %why, "operation value unreadable");
                if queue.iter().any(|q| q.id == request.op_id) {
                    if may_write {
                        let id = objects::parse_op_id(&request.op_id)?;
                        self.store
                            .operations()
                            .fail(id, &format!("value unreadable: {why}"), None, now)
                            .await?;
                    }
                    queue.retain(|q| q.id != request.op_id);
                }
                Ok(None)
            }
        }
    }

    /// Whether a later message of a live session may continue it: it carries the session's
    /// RespURI token, or the device is provisioned as one that ignores RespURI.
    fn token_accepted(
        &self,
        device: &Device,
        state: &SessionState,
        presented: Option<&str>,
    ) -> bool {
        match (&state.resp_token, presented) {
            (Some(expected), Some(presented)) => {
                crate::dm::auth::constant_time_eq(expected.as_bytes(), presented.as_bytes())
            }
            // A session we gave no RespURI (none configured) has no token to check.
            (None, _) => true,
            (Some(_), None) => device.ignores_resp_uri,
        }
    }

    /// Another replica took this device's message step first. If it was this very message,
    /// its stored reply is the answer (the same bytes, so the device sees one conversation);
    /// otherwise the caller retries on the new state.
    async fn lost_race(
        &self,
        device: &Device,
        session_id: &str,
        msg_id: &str,
        request_md5: &str,
        encoding: Encoding,
    ) -> Result<DmReply, DmError> {
        if let Some(s) = self.store.sessions().latest(&device.id, session_id).await?
            && let Ok(state) = SessionState::from_json(&s.state_json)
            && let Some(cached) = &state.last_reply
            && cached.device_msg_id.trim() == msg_id
            && cached.request_md5 == request_md5
        {
            tracing::info!(device.id = %device.id, session.id = %session_id, dm.msg_id = msg_id, "same DM message answered by another replica; its reply repeated");
            return Ok(cached_reply(cached, encoding));
        }
        Err(DmError::Busy)
    }
}

fn cached_reply(cached: &CachedReply, encoding: Encoding) -> DmReply {
    DmReply {
        body: cached.body.clone(),
        content_type: encoding.content_type(),
        hmac_header: cached.hmac_header.clone(),
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
    let nonce = |slot, b64: &Option<String>| nonces::stored(&device.id, slot, b64.as_deref());
    DeviceRecord {
        dev_id: device.dev_id.clone(),
        client: Some(ClientCredentials {
            auth_type: device.client_auth_type,
            name: device.client_name.clone(),
            secret: StoredSecret::Hash(CredentialHash(secrets.client_secret_hash.clone())),
            nonce: nonce(nonces::Slot::Client, &secrets.client_nonce),
        }),
        server: Some(ServerCredentials {
            auth_type: device.server_auth_type,
            name: device.server_name.clone(),
            secret: StoredSecret::Hash(CredentialHash(secrets.server_secret_hash.clone())),
            nonce: nonce(nonces::Slot::Server, &secrets.server_nonce),
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
