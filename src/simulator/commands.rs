//! Executing the server's commands on the device: a Status for each (brief 1.7), Results for
//! Gets, tree writes, FUMO Exec, Sequence/Atomic, and incoming Large Object chunks.

use crate::dm::message::{
    Alert, AlertCode, Command, Container, Exec, Format, Id, Item, ItemCommand, Results, Status,
    StatusCode, SyncML, Target, normalize_uri,
};

use super::objects::{ChunkStep, IncomingObject, decode_value, transmitted, value_item};
use super::session::{ClientSession, status_for};

/// A status for one Item of a multi-item command (with TargetRef).
fn item_status(msg: &SyncML, c: &Command, item: &Item, code: StatusCode) -> Command {
    let mut s = status_for(msg, c, code);
    if let Command::Status(st) = &mut s {
        st.target_ref = item
            .target
            .as_ref()
            .map(|t| vec![t.loc_uri.clone()])
            .unwrap_or_default();
    }
    s
}

fn worst(codes: &[StatusCode]) -> StatusCode {
    codes
        .iter()
        .copied()
        .find(|c| !c.is_success())
        .or_else(|| codes.first().copied())
        .unwrap_or(StatusCode::INCOMPLETE_COMMAND)
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

impl ClientSession<'_> {
    /// Answers every command of `msg` into `out`.
    pub(crate) fn execute_all(&mut self, msg: &SyncML, out: &mut Vec<Command>) {
        let carries_chunk = msg.body.commands.iter().any(|c| match c {
            Command::Replace(x) | Command::Add(x) => x.items.iter().any(|i| i.more_data),
            _ => false,
        });
        if carries_chunk && msg.body.final_ {
            self.error("Final in a message carrying a non-final chunk (brief 1.4)");
        }
        for c in &msg.body.commands {
            if !matches!(c, Command::Status(_)) {
                self.execute(msg, c, out, false);
            }
        }
    }

    /// Executes one command; returns its overall code (what Atomic judges).
    fn execute(
        &mut self,
        msg: &SyncML,
        c: &Command,
        out: &mut Vec<Command>,
        in_atomic: bool,
    ) -> StatusCode {
        self.report.commands_received += 1;
        let continues_object = match (&self.incoming, c) {
            (None, _) => true,
            (Some(inc), Command::Replace(x) | Command::Add(x)) => {
                c.name() == inc.cmd
                    && x.items
                        .first()
                        .and_then(|i| i.target.as_ref())
                        .map(|t| normalize_uri(&t.loc_uri))
                        == Some(inc.target.clone())
            }
            (Some(_), _) => false,
        };
        if !continues_object && let Some(inc) = self.incoming.take() {
            // A different command mid-object: report the interrupted object (brief 3.1, 3.4).
            self.error(format!(
                "{} arrived while the Large Object for {} was unfinished",
                c.name(),
                inc.target
            ));
            out.push(Command::Alert(Alert {
                cmd_id: Id::default(),
                no_resp: false,
                cred: None,
                data: AlertCode::NO_END_OF_DATA,
                correlator: None,
                items: vec![Item {
                    target: Some(Target::uri(inc.target)),
                    ..Item::default()
                }],
            }));
        }
        let code = match c {
            Command::Get(x) => return self.get(msg, c, x, out, in_atomic),
            Command::Replace(x) | Command::Add(x) => return self.write(msg, c, x, out),
            Command::Delete(x) => {
                return self.per_item(msg, c, x, out, |s, i| {
                    let uri = i.target.as_ref().map(|t| t.loc_uri.clone());
                    uri.map_or(StatusCode::INCOMPLETE_COMMAND, |u| {
                        s.dev.tree.delete(&u).err().unwrap_or(StatusCode::OK)
                    })
                });
            }
            Command::Copy(x) => {
                return self.per_item(msg, c, x, out, |s, i| match (&i.source, &i.target) {
                    (Some(src), Some(t)) => {
                        let r = s.dev.tree.copy(&src.loc_uri, &t.loc_uri);
                        if r.is_ok() {
                            s.dev.after_write(&normalize_uri(&t.loc_uri));
                        }
                        r.err().unwrap_or(StatusCode::OK)
                    }
                    _ => StatusCode::INCOMPLETE_COMMAND,
                });
            }
            Command::Exec(e) => self.exec(e, in_atomic),
            Command::Alert(a) => match a.data {
                AlertCode::NEXT_MESSAGE | AlertCode::SESSION_ABORT => StatusCode::OK,
                // No UI on a simulated device (libdmclient without a UI callback does the same).
                _ => StatusCode::OPTIONAL_FEATURE_NOT_SUPPORTED,
            },
            Command::Sequence(seq) => return self.sequence(msg, c, seq, out, in_atomic),
            Command::Atomic(at) => return self.atomic(msg, c, at, out, in_atomic),
            Command::Results(_) => {
                self.error("server sent Results (only devices send Results)");
                StatusCode::COMMAND_NOT_ALLOWED
            }
            Command::Unknown(u) => {
                self.error(format!(
                    "server sent {} (not used in DM, brief 1.8)",
                    u.name
                ));
                StatusCode::OPTIONAL_FEATURE_NOT_SUPPORTED
            }
            Command::Status(_) => return StatusCode::OK,
        };
        if !no_resp(c) {
            out.push(status_for(msg, c, code));
        }
        code
    }

    /// One Status for a single-item command, one per Item (with TargetRef) otherwise.
    fn per_item(
        &mut self,
        msg: &SyncML,
        c: &Command,
        x: &ItemCommand,
        out: &mut Vec<Command>,
        mut f: impl FnMut(&mut Self, &Item) -> StatusCode,
    ) -> StatusCode {
        if x.items.is_empty() {
            if !x.no_resp {
                out.push(status_for(msg, c, StatusCode::INCOMPLETE_COMMAND));
            }
            return StatusCode::INCOMPLETE_COMMAND;
        }
        let codes: Vec<StatusCode> = x.items.iter().map(|i| f(self, i)).collect();
        if !x.no_resp {
            if let [code] = codes.as_slice() {
                out.push(status_for(msg, c, *code));
            } else {
                for (i, code) in x.items.iter().zip(&codes) {
                    out.push(item_status(msg, c, i, *code));
                }
            }
        }
        worst(&codes)
    }

    fn get(
        &mut self,
        msg: &SyncML,
        c: &Command,
        x: &ItemCommand,
        out: &mut Vec<Command>,
        in_atomic: bool,
    ) -> StatusCode {
        let enc = self.enc;
        let server_max_obj = self.server_max_obj;
        let mut items = Vec::new();
        let code = self.per_item(msg, c, x, out, |s, i| {
            // Get is not allowed inside Atomic (brief 1.8).
            if in_atomic {
                return StatusCode::COMMAND_FAILED;
            }
            let Some(t) = &i.target else {
                return StatusCode::INCOMPLETE_COMMAND;
            };
            if t.loc_uri.ends_with("?list=Struct") {
                // One Results item per node (Source = its URI), which is what servers
                // reading the structure (src/fumo/discover.rs) take the URIs from.
                return match s.dev.tree.list_struct(&t.loc_uri) {
                    Ok(nodes) => {
                        for (uri, v) in nodes {
                            let mut item = value_item(&uri, &v.format, v.mime_type, v.data, enc);
                            item.data = None;
                            items.push(item);
                        }
                        StatusCode::OK
                    }
                    Err(code) => code,
                };
            }
            match s.dev.tree.get(&t.loc_uri) {
                Ok(v) => {
                    let item = value_item(&t.loc_uri, &v.format, v.mime_type, v.data, enc);
                    let size = transmitted(&item).map_or(0, |b| b.len() as u64);
                    if server_max_obj.is_some_and(|m| size > m) {
                        return StatusCode::REQUEST_ENTITY_TOO_LARGE;
                    }
                    items.push(item);
                    StatusCode::OK
                }
                Err(code) => code,
            }
        });
        if !items.is_empty() {
            out.push(Command::Results(Results {
                cmd_id: Id::default(),
                msg_ref: Some(msg.hdr.msg_id.clone()),
                cmd_ref: x.cmd_id.clone(),
                items,
                ..Results::default()
            }));
        }
        code
    }

    fn write(
        &mut self,
        msg: &SyncML,
        c: &Command,
        x: &ItemCommand,
        out: &mut Vec<Command>,
    ) -> StatusCode {
        let kind = c.name().to_owned();
        if x.items.len() > 1 && x.items.iter().any(|i| i.more_data) {
            self.error("chunked command with more than one Item (brief 3.1)");
        }
        self.per_item(msg, c, x, out, |s, i| s.write_item(&kind, x, i))
    }

    fn write_item(&mut self, kind: &str, x: &ItemCommand, item: &Item) -> StatusCode {
        let Some(t) = &item.target else {
            return StatusCode::INCOMPLETE_COMMAND;
        };
        let uri = normalize_uri(&t.loc_uri);
        let meta = item.meta.as_ref().or(x.meta.as_ref());
        let max_obj = self.dev.profile.max_obj_size;
        if let Some(mut inc) = self.incoming.take() {
            // A following chunk (execute() already dropped objects a different command broke).
            return match inc.push(item, meta) {
                ChunkStep::More => {
                    self.incoming = Some(inc);
                    StatusCode::CHUNKED_ITEM_ACCEPTED
                }
                ChunkStep::Done(format, value) => {
                    self.report.large_objects_received += 1;
                    self.report.large_object_sha256.push({
                        use sha2::Digest as _;
                        hex::encode(sha2::Sha256::digest(&value))
                    });
                    self.apply(kind, &uri, &format, inc.mime_type.as_deref(), value)
                }
                ChunkStep::Failed(code, why) => {
                    self.error(why);
                    code
                }
            };
        }
        if item.more_data {
            if !self.dev.profile.large_objects {
                self.error("Large Object sent to a device with LrgObj=false (brief 3.2)");
                return StatusCode::OPTIONAL_FEATURE_NOT_SUPPORTED;
            }
            let pre = if kind == "Add" {
                self.dev.tree.check_add(&uri)
            } else {
                self.dev.tree.check_replace(&uri)
            };
            if let Err(code) = pre {
                return code;
            }
            return match IncomingObject::start(kind, uri, item, meta, max_obj) {
                Ok(inc) => {
                    self.incoming = Some(inc);
                    StatusCode::CHUNKED_ITEM_ACCEPTED
                }
                Err((code, why)) => {
                    self.error(why);
                    code
                }
            };
        }
        let mime = meta.and_then(|m| m.type_.as_deref());
        if kind == "Add" && meta.and_then(|m| m.format.as_ref()) == Some(&Format::Node) {
            return match self.dev.tree.add(&uri, None, mime) {
                Ok(()) => StatusCode::OK,
                Err(code) => code,
            };
        }
        let Some(wire) = transmitted(item) else {
            // TNDS is not supported by the simulator (brief 8: 415).
            return StatusCode::UNSUPPORTED_MEDIA_TYPE;
        };
        if let Some(size) = meta.and_then(|m| m.size)
            && size != wire.len() as u64
        {
            self.error(format!("Size {size} but {} bytes of data", wire.len()));
            return StatusCode::SIZE_MISMATCH;
        }
        if wire.len() as u64 > max_obj {
            self.error(format!(
                "object of {} bytes exceeds our MaxObjSize {max_obj}",
                wire.len()
            ));
            return StatusCode::REQUEST_ENTITY_TOO_LARGE;
        }
        let opaque = matches!(item.data, Some(crate::dm::message::Data::Opaque(_)));
        match decode_value(wire, meta.and_then(|m| m.format.as_ref()), opaque) {
            Ok((format, value)) => self.apply(kind, &uri, &format, mime, value),
            Err(code) => code,
        }
    }

    fn apply(
        &mut self,
        kind: &str,
        uri: &str,
        format: &str,
        mime: Option<&str>,
        value: Vec<u8>,
    ) -> StatusCode {
        let r = if kind == "Add" {
            self.dev.tree.add(uri, Some((format, value)), mime)
        } else {
            self.dev.tree.replace(uri, format, mime, value)
        };
        match r {
            Ok(()) => {
                self.dev.after_write(uri);
                StatusCode::OK
            }
            Err(code) => code,
        }
    }

    fn exec(&mut self, e: &Exec, in_atomic: bool) -> StatusCode {
        // Exec belongs in SyncBody or Sequence only (brief 1.8).
        if in_atomic {
            return StatusCode::COMMAND_NOT_ALLOWED;
        }
        let Some(t) = &e.item.target else {
            return StatusCode::INCOMPLETE_COMMAND;
        };
        self.dev.exec(&t.loc_uri, e.correlator.as_deref())
    }

    fn sequence(
        &mut self,
        msg: &SyncML,
        c: &Command,
        seq: &Container,
        out: &mut Vec<Command>,
        in_atomic: bool,
    ) -> StatusCode {
        // 200 once started; members answered in order after it (brief 1.8).
        if !seq.no_resp {
            out.push(status_for(msg, c, StatusCode::OK));
        }
        for n in &seq.commands {
            self.execute(msg, n, out, in_atomic);
        }
        StatusCode::OK
    }

    fn atomic(
        &mut self,
        msg: &SyncML,
        c: &Command,
        at: &Container,
        out: &mut Vec<Command>,
        in_atomic: bool,
    ) -> StatusCode {
        let snapshot = (
            self.dev.tree.clone(),
            self.dev.pending_alerts.clone(),
            self.dev.profile.clone(),
        );
        let mut inner = Vec::new();
        // No nested Atomic (brief 1.8): fails like a failed member.
        let mut failed = in_atomic;
        for n in &at.commands {
            let code = self.execute(msg, n, &mut inner, true);
            failed |= !code.is_success();
        }
        let code = if failed {
            (self.dev.tree, self.dev.pending_alerts, self.dev.profile) = snapshot;
            // Members that had succeeded are rolled back: 216 (brief 1.8).
            for s in &mut inner {
                if let Command::Status(Status { data, .. }) = s
                    && data.is_success()
                {
                    *data = StatusCode::ATOMIC_ROLLBACK_OK;
                }
            }
            StatusCode::ATOMIC_FAILED
        } else {
            StatusCode::OK
        };
        if !at.no_resp {
            out.push(status_for(msg, c, code));
        }
        out.append(&mut inner);
        code
    }
}
