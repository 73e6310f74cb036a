//! The message handler: authentication, the Status/Results bookkeeping of Packages 1-4,
//! device alerts, Large Objects in both directions, and filling replies from the queue.

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

    // ---- device commands -------------------------------------------------------------

    fn command(&mut self, c: &'a Command) {
        let msg_id = &self.msg().hdr.msg_id;
        let code = match c {
            Command::Status(s) => return self.on_status(s),
            Command::Results(r) => return self.on_results(r),
            Command::Alert(a) => self.on_alert(a),
            Command::Replace(r) => self.on_replace(r),
            // The device may only send Alert, Results, Status and the DevInfo Replace (1.5).
            Command::Add(_)
            | Command::Copy(_)
            | Command::Delete(_)
            | Command::Exec(_)
            | Command::Get(_)
            | Command::Atomic(_)
            | Command::Sequence(_) => StatusCode::COMMAND_NOT_ALLOWED,
            Command::Unknown(_) => StatusCode::OPTIONAL_FEATURE_NOT_SUPPORTED,
        };
        if !no_resp(c) {
            self.owe(msg_id, c.cmd_id(), c.name(), code);
        }
    }

    fn on_replace(&mut self, r: &ItemCommand) -> StatusCode {
        let mut all_devinfo = true;
        for item in &r.items {
            let uri = item
                .source
                .as_ref()
                .map(|s| &s.loc_uri)
                .or(item.target.as_ref().map(|t| &t.loc_uri));
            match uri.map(|u| normalize_uri(u)) {
                Some(u) if u.starts_with("./DevInfo/") => {
                    // Items often lack Meta (trap 23): the value is chr text/plain by default.
                    let value = item
                        .data
                        .as_ref()
                        .and_then(Data::as_text)
                        .unwrap_or_default()
                        .to_owned();
                    self.fx.push(Effect::Inventory { uri: u, value });
                }
                _ => all_devinfo = false,
            }
        }
        if all_devinfo {
            StatusCode::OK
        } else {
            StatusCode::COMMAND_NOT_ALLOWED
        }
    }

    fn on_alert(&mut self, a: &Alert) -> StatusCode {
        match a.data {
            AlertCode::SERVER_INITIATED_MGMT | AlertCode::CLIENT_INITIATED_MGMT => StatusCode::OK,
            AlertCode::NEXT_MESSAGE => {
                self.device_asks_next = true;
                StatusCode::OK
            }
            AlertCode::SESSION_ABORT => {
                self.device_aborted = true;
                StatusCode::OK
            }
            AlertCode::NO_END_OF_DATA => {
                // The device gave up on our chunked object (or on sending its own).
                if let Some(o) = self.st.outgoing.take() {
                    self.large_object_failed(
                        o.op_id,
                        o.sequence_group,
                        NotDelivered::LargeObjectFailed { status: None },
                        true,
                    );
                }
                self.abandon_incoming();
                StatusCode::OK
            }
            AlertCode::GENERIC_ALERT | AlertCode::CLIENT_EVENT => {
                if a.items.is_empty() {
                    return StatusCode::INCOMPLETE_COMMAND;
                }
                let mut device_request = false;
                for item in &a.items {
                    let rec = alert_record(a, item);
                    device_request |= rec.alert_type.as_deref().is_some_and(|t| {
                        t.ends_with(".devicerequest") || t.ends_with(".userrequest")
                    });
                    self.fx.push(Effect::Alert(rec));
                }
                // Device asks for an update: 200 if we push something now, else 202 (5.5).
                if device_request && !self.has_pending_ops() {
                    StatusCode::ACCEPTED
                } else {
                    StatusCode::OK
                }
            }
            AlertCode(0) => StatusCode::INCOMPLETE_COMMAND,
            AlertCode(1100..=1104) => StatusCode::COMMAND_NOT_ALLOWED,
            _ => StatusCode::OPTIONAL_FEATURE_NOT_SUPPORTED,
        }
    }

    fn has_pending_ops(&self) -> bool {
        self.inp
            .queue
            .iter()
            .any(|q| !self.st.sent_ops.contains(&q.id))
    }

    fn find_sent(&self, msg_ref: Option<&Id>, cmd_ref: Option<&Id>) -> Option<usize> {
        let cmd = cmd_ref?.number()?;
        let msg = msg_ref.and_then(Id::number);
        // Without MsgRef, the newest command with that CmdID.
        self.st
            .outstanding
            .iter()
            .rposition(|s| s.cmd_id == cmd && msg.is_none_or(|m| m == s.msg_id))
    }

    fn on_status(&mut self, s: &Status) {
        // Any Chal from the device carries the nonce for our next credentials (HMAC devices
        // attach one to every status).
        if let Some(n) = s.chal.as_ref().and_then(|c| c.meta.next_nonce.as_deref()) {
            match crate::dm::auth::Nonce::from_b64(n) {
                Ok(nonce) => {
                    self.st.server_nonce = Some(nonce.clone());
                    self.fx.push(Effect::StoreServerNonce(nonce));
                }
                Err(_) => self.fx.push(Effect::InvalidNextNonce),
            }
        }
        if s.cmd_ref.as_ref().and_then(Id::number) == Some(0) || s.cmd == "SyncHdr" {
            match s.data {
                StatusCode::AUTHENTICATION_ACCEPTED => self.st.server_authenticated = true,
                StatusCode::INVALID_CREDENTIALS | StatusCode::MISSING_CREDENTIALS => {
                    self.st.server_authenticated = false;
                    self.st.server_auth_failures = self.st.server_auth_failures.saturating_add(1);
                    self.fx.push(Effect::ServerAuthRejected { status: s.data });
                    if self.st.server_auth_failures > self.inp.server.max_auth_attempts {
                        self.server_rejected = true;
                    }
                }
                _ => {}
            }
            return;
        }
        let Some(i) = self.find_sent(s.msg_ref.as_ref(), s.cmd_ref.as_ref()) else {
            return;
        };
        if self.st.outstanding[i].answered {
            return;
        }
        self.st.outstanding[i].answered = true;
        match self.st.outstanding[i].purpose.clone() {
            Purpose::Operation {
                op_id,
                last_chunk: false,
            } => {
                if s.data != StatusCode::CHUNKED_ITEM_ACCEPTED {
                    // 424, 413, 412, 400, …: the device refused the object.
                    let group = self.lo_group(&op_id);
                    self.st.outgoing = None;
                    self.large_object_failed(
                        op_id,
                        group,
                        NotDelivered::LargeObjectFailed {
                            status: Some(s.data),
                        },
                        true,
                    );
                }
            }
            Purpose::Operation {
                op_id,
                last_chunk: true,
            } if self.server_refused && super::refused::is_credential_refusal(s.data) => {
                super::refused::requeue(&mut self.st, op_id, s.data, &mut self.fx);
            }
            Purpose::Operation {
                op_id,
                last_chunk: true,
            } => {
                if self.st.outgoing.as_ref().is_some_and(|o| o.op_id == op_id) {
                    self.st.outgoing = None;
                }
                self.fx.push(Effect::OperationStatus {
                    op_id,
                    status: s.data,
                });
            }
            Purpose::LrgObjProbe => {
                if !s.data.is_success() {
                    self.st.large_object_support = Some(false);
                }
            }
            Purpose::Other => {}
        }
    }

    fn on_results(&mut self, r: &Results) {
        let msg_id = &self.msg().hdr.msg_id;
        let purpose = self
            .find_sent(r.msg_ref.as_ref(), Some(&r.cmd_ref))
            .map(|i| self.st.outstanding[i].purpose.clone());
        let op_id = match &purpose {
            Some(Purpose::Operation { op_id, .. }) => Some(op_id.clone()),
            _ => None,
        };
        let mut out = Vec::new();
        let mut code = StatusCode::OK;
        for item in &r.items {
            let meta = item.meta.as_ref().or(r.meta.as_ref());
            if self.st.incoming.is_some() || item.more_data {
                code = self.result_chunk(item, op_id.as_deref());
                continue;
            }
            let bytes = match &item.data {
                Some(Data::Text(t))
                    if meta.and_then(|m| m.format.as_ref()) == Some(&Format::B64) =>
                {
                    match STANDARD.decode(t.trim()) {
                        Ok(b) => b,
                        Err(e) => {
                            // Not what the device said it sent: the result is unreadable.
                            code = StatusCode::BAD_REQUEST;
                            if let Some(op_id) = &op_id {
                                self.fx.push(Effect::OperationResultsRejected {
                                    op_id: op_id.clone(),
                                    reason: format!("Results data is not valid base64: {e}"),
                                });
                            }
                            continue;
                        }
                    }
                }
                Some(Data::Text(t)) => t.as_bytes().to_vec(),
                Some(Data::Opaque(b)) => b.clone(),
                Some(Data::Elements(e)) => e
                    .iter()
                    .map(crate::dm::xml::write_tree)
                    .collect::<String>()
                    .into_bytes(),
                None => Vec::new(),
            };
            let uri = item
                .source
                .as_ref()
                .map(|s| normalize_uri(&s.loc_uri))
                .unwrap_or_default();
            let first_meta = r.items.first().and_then(|i| i.meta.as_ref()).or(meta);
            out.push(ResultItem {
                uri,
                format: first_meta
                    .and_then(|m| m.format.as_ref())
                    .map(|f| f.as_str().to_owned()),
                mime_type: first_meta.and_then(|m| m.type_.clone()),
                data: bytes,
            });
        }
        for it in &out {
            if it.uri.starts_with("./DevInfo/") || it.uri.starts_with("./DevDetail/") {
                let value = String::from_utf8_lossy(&it.data).into_owned();
                if it.uri == "./DevDetail/LrgObj" {
                    self.st.large_object_support = Some(value.trim().eq_ignore_ascii_case("true"));
                }
                self.fx.push(Effect::Inventory {
                    uri: it.uri.clone(),
                    value,
                });
            }
        }
        if let Some(Purpose::LrgObjProbe) = purpose
            && self.st.large_object_support.is_none()
        {
            self.st.large_object_support = Some(false);
        }
        if let Some(op_id) = op_id
            && !out.is_empty()
        {
            self.fx.push(Effect::OperationResults { op_id, items: out });
        }
        // Results get a Status only when it is not a plain 200 (brief 1.6).
        if code != StatusCode::OK {
            self.owe(msg_id, &r.cmd_id, "Results", code);
        }
    }

    /// One chunk of a Large Object in the device's Results: its bytes go out as an effect for
    /// the edge to stage, and only the bookkeeping stays in the state. Returns the status.
    fn result_chunk(&mut self, item: &Item, op_id: Option<&str>) -> StatusCode {
        let Some(inc) = &mut self.st.incoming else {
            // The first chunk. Only the result of one of our operations may be a Large
            // Object: anything else has nowhere to go.
            let Some(op_id) = op_id else {
                return StatusCode::OPTIONAL_FEATURE_NOT_SUPPORTED;
            };
            return match Reassembly::start(item, self.inp.server.max_obj_size) {
                Ok((reassembly, bytes)) => {
                    self.fx.push(Effect::ResultChunk {
                        op_id: op_id.to_owned(),
                        seq: 0,
                        bytes,
                    });
                    self.st.incoming = Some(Incoming {
                        op_id: op_id.to_owned(),
                        reassembly,
                    });
                    StatusCode::CHUNKED_ITEM_ACCEPTED
                }
                Err(code) => {
                    self.fx.push(Effect::OperationResultsRejected {
                        op_id: op_id.to_owned(),
                        reason: format!("Large Object result refused with status {}", code.0),
                    });
                    code
                }
            };
        };
        let seq = inc.reassembly.chunks;
        match inc.reassembly.push(item) {
            ChunkOutcome::Buffered(bytes) => {
                let op_id = inc.op_id.clone();
                self.fx.push(Effect::ResultChunk { op_id, seq, bytes });
                StatusCode::CHUNKED_ITEM_ACCEPTED
            }
            ChunkOutcome::Complete(bytes) => {
                let Some(Incoming { op_id, reassembly }) = self.st.incoming.take() else {
                    return StatusCode::COMMAND_FAILED;
                };
                self.fx.push(Effect::ResultChunk {
                    op_id: op_id.clone(),
                    seq,
                    bytes,
                });
                let b64 = reassembly.is_b64();
                self.fx.push(Effect::ResultObject {
                    op_id,
                    uri: normalize_uri(&reassembly.source_uri),
                    format: reassembly.format,
                    mime_type: reassembly.mime_type,
                    b64,
                    transmitted_len: reassembly.received,
                    chunks: reassembly.chunks,
                    chain: reassembly.chain,
                });
                StatusCode::OK
            }
            ChunkOutcome::Failed(code) => {
                if let Some(inc) = self.st.incoming.take() {
                    self.fx.push(Effect::OperationResultsRejected {
                        op_id: inc.op_id.clone(),
                        reason: format!("Large Object result refused with status {}", code.0),
                    });
                    self.fx.push(Effect::ResultAbandoned { op_id: inc.op_id });
                }
                code
            }
        }
    }

    /// Drops the device's Large Object in progress, if any (its staged chunks with it).
    fn abandon_incoming(&mut self) {
        if let Some(inc) = self.st.incoming.take() {
            self.fx.push(Effect::ResultAbandoned { op_id: inc.op_id });
        }
    }

    /// The sequence group of an operation that is queued or is the Large Object in flight.
    fn lo_group(&self, op_id: &str) -> Option<String> {
        if let Some(q) = self.inp.queue.iter().find(|q| q.id == op_id) {
            return q.sequence_group.clone();
        }
        self.st
            .outgoing
            .as_ref()
            .filter(|o| o.op_id == op_id)
            .and_then(|o| o.sequence_group.clone())
    }

    /// A Large Object (or a command too big to send) was not delivered. The members of its
    /// sequence group that come after it are held back (see `fill_from_queue`).
    fn large_object_failed(
        &mut self,
        op_id: String,
        group: Option<String>,
        reason: NotDelivered,
        retry_later: bool,
    ) {
        if let Some(group) = group
            && !self.st.broken_groups.iter().any(|b| b.group == group)
        {
            self.st.broken_groups.push(BrokenGroup {
                group,
                after: op_id.clone(),
                retry_later,
            });
        }
        self.not_delivered(op_id, reason, retry_later);
    }

    fn not_delivered(&mut self, op_id: String, reason: NotDelivered, retry_later: bool) {
        self.fx.push(Effect::OperationNotDelivered {
            op_id,
            reason,
            retry_later,
        });
    }

    // ---- what to send ------------------------------------------------------------------

    fn decide(&mut self) {
        // Our Cred counts towards the size of everything measured below.
        self.reply.msg.hdr.cred = server_cred(&self.st, self.inp.device);
        if self.device_aborted {
            // Status for SyncHdr and the Alert, no commands, Final (brief 1.6). The session
            // ends, so statuses that do not fit are dropped.
            self.drop_in_flight(NotDelivered::SessionAborted);
            self.flush_owed(Tail::None);
            self.st.owed_statuses.clear();
            self.end(SessionOutcome::AbortedByDevice);
            return;
        }
        if self.server_rejected {
            self.drop_in_flight(NotDelivered::SessionAborted);
            self.flush_owed(Tail::Abort);
            self.st.owed_statuses.clear();
            let id = self.reply.cmd_id();
            self.reply.push(abort_alert(id));
            self.end(SessionOutcome::ServerAuthenticationRejected);
            return;
        }
        // A device asking for the rest of our package (Alert 1222, no Final) has answered
        // all of it so far; its own package does not continue (brief 1.6).
        if self.msg().body.final_ || self.device_asks_next {
            self.st.device_package_closed = true;
        }
        // Our package is open while a chunked object is in flight: continue it.
        if self.st.outgoing.is_some() {
            if self.last_chunk_acked() {
                if self.flush_owed(Tail::None) {
                    self.send_next_chunk();
                }
                // Else this message carries statuses only, without Final; the device asks
                // for more and gets the next chunk then.
                return;
            }
            // No 213 for the chunk: the transfer is broken.
            if let Some(o) = self.st.outgoing.take() {
                self.large_object_failed(
                    o.op_id,
                    o.sequence_group,
                    NotDelivered::LargeObjectFailed { status: None },
                    true,
                );
            }
        }
        if !self.st.device_package_closed {
            // The device's package continues: ask for the next message, no Final (1.6).
            self.flush_owed(Tail::NextMessage);
            self.alert_next_message();
            return;
        }
        // The device closed its package. Our answer to it may need several messages
        // (brief 1.6): send the statuses that fit without Final; the device asks for the
        // rest with Alert 1222, and new commands only follow the last owed status.
        if !self.flush_owed(Tail::None) {
            return;
        }
        // Every command we sent should have its Status now. When the device refused our
        // credentials it executed none of them (members of a refused Sequence get no Status
        // of their own): they go out again.
        for s in std::mem::take(&mut self.st.outstanding) {
            if let Purpose::Operation { op_id, last_chunk } = s.purpose
                && !s.answered
            {
                // (A Large Object chunk is the chunk code's business: not restarted here.)
                if self.server_refused && last_chunk {
                    let code = StatusCode::INVALID_CREDENTIALS;
                    super::refused::requeue(&mut self.st, op_id, code, &mut self.fx);
                } else {
                    self.not_delivered(op_id, NotDelivered::NoStatus, true);
                }
            }
        }
        if self.fill_from_queue() == Fill::Deferred {
            // The next command fits a message of its own but not after these statuses:
            // this part goes without Final, the command follows when the device asks.
            return;
        }
        self.st.device_package_closed = false;
        if self.reply.has_commands() {
            if self.st.outgoing.is_none() {
                self.reply.msg.body.final_ = true;
            }
        } else {
            // Nothing left that needs an answer: this reply ends the session.
            self.end(SessionOutcome::Completed);
        }
    }

    /// Records a Status owed for device command `cmd_ref` of message `msg_ref`; it goes into
    /// a message by [`flush_owed`](Self::flush_owed).
    fn owe(&mut self, msg_ref: &Id, cmd_ref: &Id, cmd: &str, code: StatusCode) {
        self.st.owed_statuses.push(OwedStatus {
            msg_ref: msg_ref.0.clone(),
            cmd_ref: cmd_ref.0.clone(),
            cmd: cmd.to_owned(),
            code,
        });
    }

    /// Moves owed statuses into the reply, oldest first, as many as fit the device's
    /// MaxMsgSize together with `tail` and Final, measured on the encoded message. Returns
    /// true when none is left over.
    fn flush_owed(&mut self, tail: Tail) -> bool {
        if self.st.owed_statuses.is_empty() {
            return true;
        }
        let max = self.max_msg();
        let owed = std::mem::take(&mut self.st.owed_statuses);
        let first_id = self.reply.peek_cmd_id();
        let with = |k: usize| {
            let mut m = self.reply.msg.clone();
            let mut id = first_id;
            for o in &owed[..k] {
                m.body.commands.push(owed_status(o, id));
                id += 1;
            }
            match tail {
                Tail::None => {}
                Tail::NextMessage => m.body.commands.push(next_message_alert(id)),
                Tail::Abort => m.body.commands.push(abort_alert(id)),
            }
            m.body.final_ = true;
            m
        };
        let fits = |k: usize| encode(&with(k), self.inp.encoding).len() <= max;
        // Statuses only grow the message: the largest count that fits, by bisection.
        let (mut lo, mut hi) = (0, owed.len());
        if fits(hi) {
            lo = hi;
        }
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        for o in &owed[..lo] {
            let id = self.reply.cmd_id();
            self.reply.push(owed_status(o, id));
        }
        self.st.owed_statuses = owed[lo..].to_vec();
        self.st.owed_statuses.is_empty()
    }

    /// The chunk we sent last was acknowledged with 213 (or none is waiting for one).
    fn last_chunk_acked(&self) -> bool {
        let Some(o) = &self.st.outgoing else {
            return true;
        };
        !self.st.outstanding.iter().any(|s| {
            !s.answered
                && matches!(&s.purpose, Purpose::Operation { op_id, last_chunk: false } if *op_id == o.op_id)
        })
    }

    fn drop_in_flight(&mut self, reason: NotDelivered) {
        if let Some(o) = self.st.outgoing.take() {
            self.not_delivered(o.op_id, reason.clone(), true);
        }
        for s in std::mem::take(&mut self.st.outstanding) {
            if let Purpose::Operation { op_id, .. } = s.purpose
                && !s.answered
            {
                self.not_delivered(op_id, reason.clone(), true);
            }
        }
        self.abandon_incoming();
    }

    fn alert_next_message(&mut self) {
        let id = self.reply.cmd_id();
        self.reply.push(next_message_alert(id));
        self.track(id, Purpose::Other);
    }

    fn track(&mut self, cmd_id: u32, purpose: Purpose) {
        self.st.outstanding.push(SentCommand {
            msg_id: self.our_msg_id,
            cmd_id,
            purpose,
            answered: false,
        });
    }

    fn max_msg(&self) -> usize {
        let m = self
            .st
            .device_max_msg_size
            .unwrap_or(self.inp.server.default_device_max_msg_size);
        usize::try_from(m).unwrap_or(usize::MAX)
    }

    /// The bytes of `op_id`'s value from `offset` on that are at hand: the window the edge
    /// passed in, else the inline value of the operation if it is in the queue.
    fn window_for(&self, op_id: &str, offset: usize) -> Option<&'a [u8]> {
        if let Some(w) = self.inp.window
            && w.op_id == op_id
            && w.offset == offset as u64
        {
            return Some(w.bytes);
        }
        self.inp
            .queue
            .iter()
            .find(|q| q.id == op_id)
            .and_then(|q| q.operation.value())
            .and_then(|v| v.data.inline())
            .and_then(|data| data.get(offset..))
    }

    /// Adds queued operations while they fit. Consecutive members of a sequence group go in
    /// one `Sequence` when they fit one message; otherwise one package each, in order.
    ///
    /// Ordering around a Large Object in a group (its chunks travel outside any Sequence,
    /// brief 3.1): a Large Object only starts in a message without other commands, so the
    /// members before it went in earlier packages and their Statuses came back (the device
    /// closed its package) before its first chunk; while it is in flight only its chunks are
    /// sent, so the members after it go at the earliest in the package that follows the
    /// device's acknowledgement of its last chunk. If the object is not delivered (refused,
    /// too large, no Large Object support, transfer broken), the members after it are held
    /// back and reported `GroupInterrupted`, retried later exactly when the object is.
    fn fill_from_queue(&mut self) -> Fill {
        let pending: Vec<&'a QueuedOperation> = self
            .inp
            .queue
            .iter()
            .filter(|q| !self.st.sent_ops.contains(&q.id))
            .collect();
        let max = self.max_msg();
        let mut i = 0;
        while i < pending.len() {
            let group = pending[i].sequence_group.as_ref();
            if let Some(b) =
                group.and_then(|g| self.st.broken_groups.iter().find(|b| b.group == *g))
            {
                let (after, retry_later) = (b.after.clone(), b.retry_later);
                self.st.sent_ops.push(pending[i].id.clone());
                self.not_delivered(
                    pending[i].id.clone(),
                    NotDelivered::GroupInterrupted { after },
                    retry_later,
                );
                i += 1;
                continue;
            }
            let mut end = i + 1;
            while group.is_some()
                && end < pending.len()
                && pending[end].sequence_group.as_ref() == group
            {
                end += 1;
            }
            if end - i > 1 && self.try_push(&pending[i..end], max) {
                i = end;
                continue;
            }
            if end - i > 1 && self.reply.has_commands() {
                return Fill::Done; // the whole Sequence goes into the next package
            }
            // A single operation (or a group too big for one message: sent one by one, still
            // in order because each package waits for the previous one's statuses).
            if self.try_push(&pending[i..i + 1], max) {
                i += 1;
                continue;
            }
            if self.reply.has_commands() {
                return Fill::Done;
            }
            let q = pending[i];
            // Too big only because of the statuses before it: the next message.
            if self.crowded() && self.fits_after_header(&q.operation, max) {
                return Fill::Deferred;
            }
            // Alone and still too big: a Large Object, or undeliverable.
            if self.start_large_object(q, max) == Fill::Deferred {
                return Fill::Deferred;
            }
            if self.st.outgoing.is_some() || self.reply.has_commands() {
                return Fill::Done;
            }
            i += 1;
        }
        Fill::Done
    }

    /// The reply carries statuses besides the SyncHdr's and one more (what the device's
    /// Alert 1222 costs in the next message): holding a command back then makes progress.
    fn crowded(&self) -> bool {
        self.reply.msg.body.commands.len() > 2
    }

    /// Whether `op` fits a message holding only our header, two statuses and Final.
    fn fits_after_header(&self, op: &Operation, max: usize) -> bool {
        if op.blob().is_some() {
            return false;
        }
        let mut m = self.reply.msg.clone();
        m.body.commands.truncate(2);
        m.body.commands.push(op_command(op, 3, self.inp.encoding));
        m.body.final_ = true;
        encode(&m, self.inp.encoding).len() <= max
    }

    /// Adds `ops` (wrapped in a Sequence when more than one) if the message still fits.
    fn try_push(&mut self, ops: &[&'a QueuedOperation], max: usize) -> bool {
        // A value in the blob store always travels as an object of its own.
        if ops.iter().any(|q| q.operation.blob().is_some()) {
            return false;
        }
        let mark = self.reply.peek_cmd_id();
        let before = self.reply.msg.body.commands.len();
        let mut tracked = Vec::new();
        let cmd = if ops.len() == 1 {
            let id = self.reply.cmd_id();
            tracked.push((id, ops[0].id.clone()));
            op_command(&ops[0].operation, id, self.inp.encoding)
        } else {
            let seq_id = self.reply.cmd_id();
            let mut inner = Vec::new();
            for q in ops {
                let id = self.reply.cmd_id();
                tracked.push((id, q.id.clone()));
                inner.push(op_command(&q.operation, id, self.inp.encoding));
            }
            Command::Sequence(Container {
                cmd_id: Id::from(seq_id),
                no_resp: false,
                meta: None,
                commands: inner,
            })
        };
        self.reply.push(cmd);
        let was_final = self.reply.msg.body.final_;
        self.reply.msg.body.final_ = true;
        let fits = self.reply.encoded_len() <= max;
        self.reply.msg.body.final_ = was_final;
        if !fits {
            self.reply.msg.body.commands.truncate(before);
            self.reply.rewind_cmd_id(mark);
            return false;
        }
        for (id, op_id) in tracked {
            self.track(
                id,
                Purpose::Operation {
                    op_id: op_id.clone(),
                    last_chunk: true,
                },
            );
            self.fx.push(Effect::OperationSent {
                op_id: op_id.clone(),
            });
            self.st.sent_ops.push(op_id);
        }
        true
    }

    fn start_large_object(&mut self, q: &'a QueuedOperation, max: usize) -> Fill {
        let group = q.sequence_group.clone();
        let Some(value) = q.operation.value() else {
            self.st.sent_ops.push(q.id.clone());
            self.large_object_failed(q.id.clone(), group, NotDelivered::MessageTooSmall, false);
            return Fill::Done;
        };
        let raw_len = usize::try_from(value.data.len()).unwrap_or(usize::MAX);
        let enc = self.inp.encoding;
        if let Some(limit) = self.st.device_max_obj_size
            && transmitted_size(raw_len, enc) > limit
        {
            self.st.sent_ops.push(q.id.clone());
            self.large_object_failed(q.id.clone(), group, NotDelivered::TooLargeForDevice, false);
            return Fill::Done;
        }
        match self.st.large_object_support {
            None => {
                // Ask before chunking: libdmclient claims LrgObj yet ignores MoreData, so an
                // explicit `true` is the minimum (brief 3.4).
                let probe = Operation::Get {
                    uri: "./DevDetail/LrgObj".into(),
                };
                if self.crowded() && !self.fits_with(&probe, max) {
                    return Fill::Deferred;
                }
                let id = self.reply.cmd_id();
                self.reply.push(op_command(&probe, id, enc));
                self.track(id, Purpose::LrgObjProbe);
                self.reply.msg.body.final_ = true;
                return Fill::Done;
            }
            Some(false) => {
                self.st.sent_ops.push(q.id.clone());
                self.large_object_failed(
                    q.id.clone(),
                    group,
                    NotDelivered::LargeObjectsUnsupported,
                    false,
                );
                return Fill::Done;
            }
            Some(true) => {}
        }
        let Some(window) = self.window_for(&q.id, 0) else {
            // The edge had no bytes for it (it reads the first blob-valued operation only):
            // it waits for a message of its own.
            return Fill::Done;
        };
        let info = ObjectInfo {
            target_uri: q.operation.uri().to_owned(),
            mime_type: value.mime_type.clone(),
            raw_len,
        };
        self.st.sent_ops.push(q.id.clone());
        self.st.outgoing = Some(Outgoing {
            op_id: q.id.clone(),
            info,
            offset: 0,
            is_add: matches!(q.operation, Operation::Add { .. }),
            sequence_group: group.clone(),
        });
        if !self.send_chunk(window, max) {
            self.st.outgoing = None;
            if self.crowded() {
                // No room left after the statuses: start it in the next message.
                self.st.sent_ops.pop();
                return Fill::Deferred;
            }
            self.large_object_failed(q.id.clone(), group, NotDelivered::MessageTooSmall, false);
            return Fill::Done;
        }
        self.fx.push(Effect::OperationSent {
            op_id: q.id.clone(),
        });
        Fill::Done
    }

    /// Whether `op` still fits the reply as it stands, with Final.
    fn fits_with(&self, op: &Operation, max: usize) -> bool {
        let mut m = self.reply.msg.clone();
        m.body
            .commands
            .push(op_command(op, self.reply.peek_cmd_id(), self.inp.encoding));
        m.body.final_ = true;
        encode(&m, self.inp.encoding).len() <= max
    }

    fn send_next_chunk(&mut self) {
        let Some(o) = &self.st.outgoing else { return };
        let op_id = o.op_id.clone();
        let group = o.sequence_group.clone();
        match self.window_for(&op_id, o.offset) {
            Some(w) => {
                let max = self.max_msg();
                if !self.send_chunk(w, max) {
                    self.st.outgoing = None;
                    self.large_object_failed(op_id, group, NotDelivered::MessageTooSmall, true);
                    self.reply.msg.body.final_ = true;
                }
            }
            // The value vanished or changed mid-transfer (the edge found nothing to read):
            // abandon it (Alert 1225 names the interrupted object, brief 3.1).
            None => {
                let target = o.info.target_uri.clone();
                self.st.outgoing = None;
                let id = self.reply.cmd_id();
                self.reply.push(Command::Alert(Alert {
                    cmd_id: Id::from(id),
                    no_resp: false,
                    cred: None,
                    data: AlertCode::NO_END_OF_DATA,
                    correlator: None,
                    items: vec![Item {
                        target: Some(Target::uri(target)),
                        ..Item::default()
                    }],
                }));
                self.track(id, Purpose::Other);
                self.large_object_failed(
                    op_id,
                    group,
                    NotDelivered::LargeObjectFailed { status: None },
                    true,
                );
                self.reply.msg.body.final_ = true;
            }
        }
    }

    /// Plans and appends the next chunk of `st.outgoing`, measuring the whole reply.
    /// `window` holds the object's bytes from `o.offset` on (maybe not to its end).
    fn send_chunk(&mut self, window: &[u8], max: usize) -> bool {
        let Some(o) = self.st.outgoing.clone() else {
            return false;
        };
        let enc = self.inp.encoding;
        let id = self.reply.cmd_id();
        let is_add = o.is_add;
        let wrap = |item: Item| {
            let c = ItemCommand {
                cmd_id: Id::from(id),
                items: vec![item],
                ..ItemCommand::default()
            };
            if is_add {
                Command::Add(c)
            } else {
                Command::Replace(c)
            }
        };
        let base = self.reply.msg.clone();
        let measure = |item: Item, last: bool| {
            let mut m = base.clone();
            m.body.commands.push(wrap(item));
            m.body.final_ = last;
            encode(&m, enc).len()
        };
        let Some(chunk) = plan_chunk(&o.info, window, o.offset, max, enc, measure) else {
            return false;
        };
        self.reply.push(wrap(chunk_item(
            &o.info,
            &window[..chunk.len],
            chunk.offset,
            chunk.last,
            enc,
        )));
        self.track(
            id,
            Purpose::Operation {
                op_id: o.op_id.clone(),
                last_chunk: chunk.last,
            },
        );
        if chunk.last {
            self.st.outgoing = None;
            self.reply.msg.body.final_ = true;
        } else {
            // No Final while chunks follow (brief 1.4).
            self.st.outgoing = Some(Outgoing {
                offset: chunk.offset + chunk.len,
                ..o
            });
            self.reply.msg.body.final_ = false;
        }
        true
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

/// What must follow the owed statuses in the message being filled.
#[derive(Debug, Clone, Copy)]
enum Tail {
    None,
    NextMessage,
    Abort,
}

/// How filling from the queue ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    Done,
    /// A command was held back for the next message of this package.
    Deferred,
}

fn simple_alert(cmd_id: u32, data: AlertCode) -> Command {
    Command::Alert(Alert {
        cmd_id: Id::from(cmd_id),
        no_resp: false,
        cred: None,
        data,
        correlator: None,
        items: Vec::new(),
    })
}

fn next_message_alert(cmd_id: u32) -> Command {
    simple_alert(cmd_id, AlertCode::NEXT_MESSAGE)
}

fn abort_alert(cmd_id: u32) -> Command {
    simple_alert(cmd_id, AlertCode::SESSION_ABORT)
}

fn owed_status(o: &OwedStatus, cmd_id: u32) -> Command {
    Command::Status(Status {
        cmd_id: Id::from(cmd_id),
        msg_ref: Some(Id(o.msg_ref.clone())),
        cmd_ref: Some(Id(o.cmd_ref.clone())),
        cmd: o.cmd.clone(),
        target_ref: Vec::new(),
        source_ref: Vec::new(),
        cred: None,
        chal: None,
        data: o.code,
        items: Vec::new(),
    })
}

fn no_resp(c: &Command) -> bool {
    match c {
        Command::Add(x)
        | Command::Copy(x)
        | Command::Delete(x)
        | Command::Get(x)
        | Command::Replace(x) => x.no_resp,
        Command::Alert(a) => a.no_resp,
        Command::Exec(e) => e.no_resp,
        Command::Atomic(c) | Command::Sequence(c) => c.no_resp,
        _ => false,
    }
}

/// A Generic Alert / Client Event item as a record, with the leniency of brief 9.10-9.12.
fn alert_record(a: &Alert, item: &Item) -> AlertRecord {
    let meta = item.meta.as_ref();
    let alert_type = meta.and_then(|m| m.type_.as_deref()).map(|t| {
        let t = t.trim();
        let lower = t.to_ascii_lowercase();
        match lower.strip_prefix("reversed-domain-name:") {
            Some(_) => t["reversed-domain-name:".len()..].trim().to_owned(),
            None => t.to_owned(),
        }
    });
    let data = item
        .data
        .as_ref()
        .and_then(Data::as_text)
        .map(str::to_owned);
    let result_code = data.as_deref().and_then(|d| {
        let digits: String = d
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    });
    AlertRecord {
        code: a.data.0,
        alert_type,
        source: item.source.as_ref().map(|s| normalize_uri(&s.loc_uri)),
        correlator: a.correlator.clone(),
        format: meta
            .and_then(|m| m.format.as_ref())
            .map(|f| f.as_str().to_owned()),
        mark: meta.and_then(|m| m.mark.clone()),
        data,
        result_code,
    }
}

/// The command for a queued operation, value inline (Item-level Meta, brief 9.6).
fn op_command(op: &Operation, cmd_id: u32, enc: Encoding) -> Command {
    let target = |uri: &str| Some(Target::uri(uri));
    let value_item = |uri: &str, v: &super::ops::Value| {
        let (format, data) = match (&v.data, enc) {
            (ValueData::Text(t), _) => (v.format.clone(), Data::Text(t.clone())),
            (ValueData::Bytes(b), Encoding::Xml) => (Format::B64, Data::Text(STANDARD.encode(b))),
            (ValueData::Bytes(b), Encoding::Wbxml) => (Format::Bin, Data::Opaque(b.clone())),
            // Never inlined: `try_push` and `fits_after_header` send blob values as objects.
            (ValueData::Blob(_), _) => (wire_format(enc), Data::Opaque(Vec::new())),
        };
        Item {
            target: target(uri),
            meta: Some(Meta {
                format: Some(format),
                type_: v.mime_type.clone(),
                ..Meta::default()
            }),
            data: Some(data),
            ..Item::default()
        }
    };
    let ic = |items: Vec<Item>| ItemCommand {
        cmd_id: Id::from(cmd_id),
        items,
        ..ItemCommand::default()
    };
    match op {
        Operation::Get { uri } => Command::Get(ic(vec![Item {
            target: target(uri),
            ..Item::default()
        }])),
        Operation::Delete { uri } => Command::Delete(ic(vec![Item {
            target: target(uri),
            ..Item::default()
        }])),
        Operation::Replace { uri, value } => Command::Replace(ic(vec![value_item(uri, value)])),
        Operation::Add {
            uri,
            value: Some(v),
        } => Command::Add(ic(vec![value_item(uri, v)])),
        Operation::Add { uri, value: None } => Command::Add(ic(vec![Item {
            target: target(uri),
            meta: Some(Meta {
                format: Some(Format::Node),
                ..Meta::default()
            }),
            ..Item::default()
        }])),
        Operation::Exec {
            uri,
            data,
            correlator,
        } => Command::Exec(Exec {
            cmd_id: Id::from(cmd_id),
            correlator: correlator.clone(),
            item: Item {
                target: target(uri),
                data: data.clone().map(Data::Text),
                ..Item::default()
            },
            ..Exec::default()
        }),
    }
}
