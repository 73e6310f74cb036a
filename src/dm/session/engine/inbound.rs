//! The device's side of a message: its commands, Alerts, Statuses and Results, and the
//! Large Objects it sends.

use super::*;

impl<'a> Cx<'a> {
    pub(super) fn command(&mut self, c: &'a Command) {
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

    pub(super) fn on_replace(&mut self, r: &ItemCommand) -> StatusCode {
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

    pub(super) fn on_alert(&mut self, a: &Alert) -> StatusCode {
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

    pub(super) fn has_pending_ops(&self) -> bool {
        self.inp
            .queue
            .iter()
            .any(|q| !self.st.sent_ops.contains(&q.id))
    }

    pub(super) fn find_sent(&self, msg_ref: Option<&Id>, cmd_ref: Option<&Id>) -> Option<usize> {
        let cmd = cmd_ref?.number()?;
        let msg = msg_ref.and_then(Id::number);
        // Without MsgRef, the newest command with that CmdID.
        self.st
            .outstanding
            .iter()
            .rposition(|s| s.cmd_id == cmd && msg.is_none_or(|m| m == s.msg_id))
    }

    pub(super) fn on_status(&mut self, s: &Status) {
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
            } if self.server_refused
                && crate::dm::session::refused::is_credential_refusal(s.data) =>
            {
                crate::dm::session::refused::requeue(&mut self.st, op_id, s.data, &mut self.fx);
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

    pub(super) fn on_results(&mut self, r: &Results) {
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
    pub(super) fn result_chunk(&mut self, item: &Item, op_id: Option<&str>) -> StatusCode {
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
    pub(super) fn abandon_incoming(&mut self) {
        if let Some(inc) = self.st.incoming.take() {
            self.fx.push(Effect::ResultAbandoned { op_id: inc.op_id });
        }
    }

    /// The sequence group of an operation that is queued or is the Large Object in flight.
    pub(super) fn lo_group(&self, op_id: &str) -> Option<String> {
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
    pub(super) fn large_object_failed(
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

    pub(super) fn not_delivered(&mut self, op_id: String, reason: NotDelivered, retry_later: bool) {
        self.fx.push(Effect::OperationNotDelivered {
            op_id,
            reason,
            retry_later,
        });
    }
}
