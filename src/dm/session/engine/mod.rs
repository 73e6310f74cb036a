//! The message handler: authentication, the Status/Results bookkeeping of Packages 1-4,
//! device alerts, Large Objects in both directions, and filling replies from the queue.
//!
//! `mod.rs` holds the message context and its run; `inbound.rs` the device's commands,
//! Statuses and Results; `outbound.rs` what the reply carries; `commands.rs` the commands
//! built for it.

mod commands;
mod inbound;
mod outbound;

use self::commands::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::authn::{Verdict, authenticate_device, server_cred, server_hmac};
use super::effect::{
    AlertRecord, Effect, NotDelivered, ResultItem, SessionLogEntry, SessionOutcome,
};
use super::ops::{Operation, QueuedOperation, ValueData};
use super::reply::Reply;
use super::state::{
    BrokenGroup, CachedReply, Incoming, Outgoing, OwedStatus, Phase, Purpose, SentCommand,
    SessionState,
};
use super::{Inbound, Outbound};
use crate::dm::auth::{NonceSource, md5_b64};
use crate::dm::large_object::{
    ChunkOutcome, ObjectInfo, Reassembly, chunk_item, plan_chunk, transmitted_size, wire_format,
};
use crate::dm::message::{
    Alert, AlertCode, Command, Container, Data, Exec, Format, Id, Item, ItemCommand, Meta, Results,
    Source, Status, StatusCode, SyncHdr, SyncML, Target, normalize_uri,
};
use crate::dm::{Encoding, encode};

/// Handles one device message. See the [module docs](super).
pub fn handle(
    state: SessionState,
    input: Inbound<'_>,
    now_ms: i64,
    rng: &mut impl NonceSource,
) -> (Outbound, Vec<Effect>) {
    let request_md5 = md5_b64(input.body);
    match super::replay::classify(&state, &input.message.hdr.msg_id.0, &request_md5) {
        super::replay::Replay::Fresh => {}
        super::replay::Replay::Repeat(c) => {
            // Same answer, no second execution: the device sees one consistent conversation.
            let out = Outbound {
                message: crate::dm::decode(&c.body, &input.server.limits)
                    .map(|(m, _)| m)
                    .unwrap_or_default(),
                body: c.body.clone(),
                content_type: input.encoding.content_type(),
                hmac_header: c.hmac_header.clone(),
                session_over: c.session_over,
                state: state.clone(),
            };
            return (out, Vec::new());
        }
        super::replay::Replay::Stale => {
            // Older than what we last answered: we no longer hold its reply, and executing it
            // again is exactly what must not happen. Refused, state untouched.
            let reply = super::refusal(
                input.message,
                StatusCode::BAD_REQUEST,
                &input.server.server_uri,
            );
            let body = encode(&reply, input.encoding);
            let out = Outbound {
                message: reply,
                body,
                content_type: input.encoding.content_type(),
                hmac_header: None,
                session_over: false,
                state,
            };
            return (out, Vec::new());
        }
    }
    let mut cx = Cx::new(state, input, now_ms);
    cx.run(rng);
    cx.finish(request_md5)
}

struct Cx<'a> {
    st: SessionState,
    inp: Inbound<'a>,
    fx: Vec<Effect>,
    reply: Reply,
    our_msg_id: u32,
    now_ms: i64,
    header_code: StatusCode,
    device_aborted: bool,
    /// The device sent Alert 1222: it asks for the rest of our package.
    device_asks_next: bool,
    server_rejected: bool,
    /// This message's Status for our SyncHdr refuses our credentials: its 401/407 on our
    /// commands mean "not executed" (see `refused`).
    server_refused: bool,
    outcome: Option<SessionOutcome>,
}

impl<'a> Cx<'a> {
    fn new(mut st: SessionState, inp: Inbound<'a>, now_ms: i64) -> Self {
        let msg = inp.message;
        if st.phase == Phase::New {
            st.dev_id = msg.hdr.source.loc_uri.clone();
            st.session_id = msg.hdr.session_id.clone();
            st.started_at_ms = now_ms;
            st.next_msg_id = 1;
            st.phase = Phase::Authenticating;
            st.client_nonce = inp.device.client.as_ref().and_then(|c| c.nonce.clone());
            st.server_nonce = inp.device.server.as_ref().and_then(|s| s.nonce.clone());
            st.large_object_support = inp.device.large_object_support;
            st.device_max_obj_size = inp.device.max_obj_size;
        }
        st.last_activity_ms = now_ms;
        let our_msg_id = st.next_msg_id.max(1);
        let hdr = SyncHdr {
            ver_dtd: "1.2".into(),
            ver_proto: "DM/1.2".into(),
            // Echoed byte for byte (brief 9.1): Sprint rejects a renumbered SessionID.
            session_id: msg.hdr.session_id.clone(),
            msg_id: Id::from(our_msg_id),
            target: Target {
                loc_uri: msg.hdr.source.loc_uri.clone(),
                loc_name: None,
            },
            source: Source {
                loc_uri: inp.server.server_uri.clone(),
                loc_name: inp.device.server.as_ref().map(|s| s.name.clone()),
            },
            ..SyncHdr::default()
        };
        Self {
            reply: Reply::new(hdr, inp.encoding),
            st,
            inp,
            fx: Vec::new(),
            our_msg_id,
            now_ms,
            header_code: StatusCode::OK,
            device_aborted: false,
            device_asks_next: false,
            server_rejected: false,
            server_refused: super::refused::refuses_our_credentials(msg),
            outcome: None,
        }
    }

    fn msg(&self) -> &'a SyncML {
        self.inp.message
    }

    fn run(&mut self, rng: &mut impl NonceSource) {
        self.header_meta(rng);
        let msg = self.msg();
        let dtd_ok = matches!(msg.hdr.ver_dtd.trim(), "1.2" | "1.1");
        if !dtd_ok || !msg.hdr.ver_proto.trim().starts_with("DM/") {
            let code = if dtd_ok {
                StatusCode::PROTOCOL_VERSION_NOT_SUPPORTED
            } else {
                StatusCode::DTD_VERSION_NOT_SUPPORTED
            };
            self.header_code = code;
            self.reply.header_status(msg, code, None);
            self.end(SessionOutcome::Completed);
            return;
        }
        let verdict = authenticate_device(&mut self.st, &self.inp, rng, &mut self.fx);
        match verdict {
            Verdict::Accepted { status, chal } => {
                self.header_code = status;
                self.reply.header_status(msg, status, chal);
                self.st.phase = Phase::Managing;
            }
            Verdict::Challenge { status, chal } => {
                self.header_code = status;
                self.reply.header_status(msg, status, Some(chal));
                self.answer_all(status);
                // The device restarts its package with credentials (brief 2.5.2), so
                // statuses that do not fit are not owed any more.
                self.flush_owed(Tail::None);
                self.st.owed_statuses.clear();
                self.st.phase = Phase::Authenticating;
                self.reply.msg.body.final_ = true;
                return;
            }
            Verdict::GiveUp { status } => {
                self.header_code = status;
                self.reply.header_status(msg, status, None);
                self.answer_all(status);
                // The session ends: what does not fit can never be sent.
                self.flush_owed(Tail::None);
                self.st.owed_statuses.clear();
                self.end(SessionOutcome::AuthenticationFailed);
                return;
            }
        }
        for c in &msg.body.commands {
            self.command(c);
        }
        self.decide();
    }

    /// SyncHdr Meta (device limits), RespURI token, our own limits in our first message.
    fn header_meta(&mut self, rng: &mut impl NonceSource) {
        if let Some(m) = &self.msg().hdr.meta
            && (m.max_msg_size.is_some() || m.max_obj_size.is_some())
        {
            let changed = (m.max_msg_size.is_some()
                && m.max_msg_size != self.st.device_max_msg_size)
                || (m.max_obj_size.is_some() && m.max_obj_size != self.st.device_max_obj_size);
            if m.max_msg_size.is_some() {
                self.st.device_max_msg_size = m.max_msg_size;
            }
            // MaxObjSize stays in force until re-sent (brief 1.3).
            if m.max_obj_size.is_some() {
                self.st.device_max_obj_size = m.max_obj_size;
            }
            if changed {
                self.fx.push(Effect::DeviceLimits {
                    max_msg_size: m.max_msg_size,
                    max_obj_size: m.max_obj_size,
                });
            }
        }
        if let Some(base) = &self.inp.server.resp_uri_base {
            if self.st.resp_token.is_none() {
                let mut b = [0u8; 16];
                rng.fill_bytes(&mut b);
                self.st.resp_token = Some(b.iter().map(|x| format!("{x:02x}")).collect());
            }
            let sep = if base.contains('?') { '&' } else { '?' };
            let token = self.st.resp_token.as_deref().unwrap_or_default();
            self.reply.msg.hdr.resp_uri = Some(format!("{base}{sep}s={token}"));
        }
        if self.our_msg_id == 1 {
            self.reply.msg.hdr.meta = Some(Meta {
                max_msg_size: Some(self.inp.server.limits.max_message_bytes as u64),
                max_obj_size: Some(self.inp.server.max_obj_size),
                ..Meta::default()
            });
        }
    }

    /// Challenge replies: the same code for every command that needs a Status (brief 2.5.1).
    fn answer_all(&mut self, code: StatusCode) {
        let msg = self.msg();
        for c in &msg.body.commands {
            if !matches!(c, Command::Status(_) | Command::Results(_)) {
                self.owe(&msg.hdr.msg_id, c.cmd_id(), c.name(), code);
            }
        }
    }

    fn end(&mut self, outcome: SessionOutcome) {
        self.reply.msg.body.final_ = true;
        self.st.phase = Phase::Ended;
        self.outcome = Some(outcome);
    }

    // ---- output ------------------------------------------------------------------------

    fn finish(mut self, request_md5: String) -> (Outbound, Vec<Effect>) {
        self.reply.msg.hdr.cred = server_cred(&self.st, self.inp.device);
        let body = encode(&self.reply.msg, self.inp.encoding);
        let hmac_header = server_hmac(&self.st, self.inp.device, &body);
        let session_over = self.st.phase == Phase::Ended;
        self.fx.push(Effect::SessionLog(SessionLogEntry {
            dev_id: self.st.dev_id.clone(),
            session_id: self.st.session_id.clone(),
            device_msg_id: self.msg().hdr.msg_id.0.clone(),
            server_msg_id: self.our_msg_id,
            encoding: self.inp.encoding,
            request_bytes: self.inp.body.len(),
            reply_bytes: body.len(),
            header_status: self.header_code,
            commands_received: self.msg().body.commands.len(),
            commands_sent: self.reply.msg.body.commands.len(),
            at_ms: self.now_ms,
        }));
        if let Some(outcome) = self.outcome {
            self.fx.push(Effect::SessionEnded { outcome });
        }
        self.st.last_device_msg_id = Some(self.msg().hdr.msg_id.0.clone());
        self.st.next_msg_id = self.our_msg_id + 1;
        self.st.last_reply = Some(CachedReply {
            device_msg_id: self.msg().hdr.msg_id.0.clone(),
            request_md5,
            body: body.clone(),
            hmac_header: hmac_header.clone(),
            session_over,
        });
        let out = Outbound {
            message: self.reply.msg,
            body,
            content_type: self.inp.encoding.content_type(),
            hmac_header,
            state: self.st,
            session_over,
        };
        (out, self.fx)
    }
}
