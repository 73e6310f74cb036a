//! What the reply carries: owed Statuses, queued operations in order and in sequence
//! groups, and Large Objects chunk by chunk within the device's MaxMsgSize.

use super::*;

impl<'a> Cx<'a> {
    pub(super) fn decide(&mut self) {
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
                    crate::dm::session::refused::requeue(&mut self.st, op_id, code, &mut self.fx);
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
    pub(super) fn owe(&mut self, msg_ref: &Id, cmd_ref: &Id, cmd: &str, code: StatusCode) {
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
    pub(super) fn flush_owed(&mut self, tail: Tail) -> bool {
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
    pub(super) fn last_chunk_acked(&self) -> bool {
        let Some(o) = &self.st.outgoing else {
            return true;
        };
        !self.st.outstanding.iter().any(|s| {
            !s.answered
                && matches!(&s.purpose, Purpose::Operation { op_id, last_chunk: false } if *op_id == o.op_id)
        })
    }

    pub(super) fn drop_in_flight(&mut self, reason: NotDelivered) {
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

    pub(super) fn alert_next_message(&mut self) {
        let id = self.reply.cmd_id();
        self.reply.push(next_message_alert(id));
        self.track(id, Purpose::Other);
    }

    pub(super) fn track(&mut self, cmd_id: u32, purpose: Purpose) {
        self.st.outstanding.push(SentCommand {
            msg_id: self.our_msg_id,
            cmd_id,
            purpose,
            answered: false,
        });
    }

    pub(super) fn max_msg(&self) -> usize {
        let m = self
            .st
            .device_max_msg_size
            .unwrap_or(self.inp.server.default_device_max_msg_size);
        usize::try_from(m).unwrap_or(usize::MAX)
    }

    /// The bytes of `op_id`'s value from `offset` on that are at hand: the window the edge
    /// passed in, else the inline value of the operation if it is in the queue.
    pub(super) fn window_for(&self, op_id: &str, offset: usize) -> Option<&'a [u8]> {
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
    pub(super) fn fill_from_queue(&mut self) -> Fill {
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
    pub(super) fn crowded(&self) -> bool {
        self.reply.msg.body.commands.len() > 2
    }

    /// Whether `op` fits a message holding only our header, two statuses and Final.
    pub(super) fn fits_after_header(&self, op: &Operation, max: usize) -> bool {
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
    pub(super) fn try_push(&mut self, ops: &[&'a QueuedOperation], max: usize) -> bool {
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

    pub(super) fn start_large_object(&mut self, q: &'a QueuedOperation, max: usize) -> Fill {
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
    pub(super) fn fits_with(&self, op: &Operation, max: usize) -> bool {
        let mut m = self.reply.msg.clone();
        m.body
            .commands
            .push(op_command(op, self.reply.peek_cmd_id(), self.inp.encoding));
        m.body.final_ = true;
        encode(&m, self.inp.encoding).len() <= max
    }

    pub(super) fn send_next_chunk(&mut self) {
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
    pub(super) fn send_chunk(&mut self, window: &[u8], max: usize) -> bool {
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
}
