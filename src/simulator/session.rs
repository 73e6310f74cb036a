//! The client session state machine (sans-IO): [`ClientSession::start`] builds Package 1,
//! [`ClientSession::on_reply`] checks one server message, answers it and says what to send
//! next. [`ClientSession::run`] drives it over a [`Transport`].
//!
//! Its own implementation of the device side: it never calls the server engine, so the
//! checks below (references, sizes, credentials, chunking) judge the server independently.

use std::collections::VecDeque;

use serde::Serialize;

use crate::dm::auth::{AuthType, HmacHeader, Nonce, basic_credential, hmac_mac, md5_credential};
use crate::dm::message::{
    Alert, AlertCode, Chal, Command, Cred, Data, Format, Id, Item, ItemCommand, Meta, Source,
    Status, StatusCode, SyncBody, SyncHdr, SyncML, Target,
};
use crate::dm::{Encoding, Limits, decode};

use super::SimError;
use super::device::{PendingAlert, SimDevice};
use super::objects::{IncomingObject, OutgoingObject};
use super::transport::{HttpReply, HttpRequest, Transport};

/// Who started the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiation {
    /// Alert 1201, SessionID chosen by the device.
    Client,
    /// Alert 1200 after a Package 0, SessionID = the trigger's id in uppercase hex.
    Server { session_id: u16 },
}

/// Knobs of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionOptions {
    /// 401/407 answers we retry before giving up (brief 2.5.4), for both directions.
    pub max_auth_retries: u8,
    /// Loop guard: messages we send in one session.
    pub max_messages: u32,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            max_auth_retries: 3,
            max_messages: 20_000,
        }
    }
}

/// What one session did, and every server mistake it saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SessionReport {
    pub dev_id: String,
    pub session_id: String,
    /// Messages we sent (HTTP requests).
    pub messages: u32,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub statuses_sent: u64,
    /// Server commands other than Status (nested ones included).
    pub commands_received: u64,
    pub auth_retries: u8,
    /// Server messages whose credentials we refused (401/407 with our `Chal`).
    pub server_auth_refusals: u32,
    /// The largest server message body, in bytes.
    pub max_message_seen: u64,
    pub generic_alerts_sent: u32,
    pub large_objects_received: u32,
    /// Lower-case hex sha256 of each Large Object received, in order (a separate process
    /// can prove what arrived without printing it).
    pub large_object_sha256: Vec<String>,
    /// Protocol violations by the server (brief rules), in order of detection.
    pub errors: Vec<String>,
    /// Why the session stopped early, if it did.
    pub failure: Option<String>,
}

/// What we expect back for a command we sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expect {
    /// A Status with 200 (Alert 1200/1201/1222, the DevInfo Replace).
    Ok,
    /// A Generic Alert: 200 or 202, then it is no longer owed.
    Report(PendingAlert),
    /// A non-final chunk of our Results: 213.
    Chunk,
    /// Results: a Status only when not 200.
    Results,
    /// Status, Alert 1223: nothing.
    Nothing,
}

#[derive(Debug, Clone)]
pub(crate) struct Sent {
    pub msg_id: u32,
    pub cmd_id: u32,
    pub cmd: String,
    pub expect: Expect,
    pub answered: bool,
}

/// One device session. Borrow the device for its duration.
pub struct ClientSession<'d> {
    pub(crate) dev: &'d mut SimDevice,
    pub(crate) opts: SessionOptions,
    pub(crate) enc: Encoding,
    /// Where the next POST goes (the server URL, then any RespURI).
    pub(crate) url: String,
    /// Our `Target/LocURI`: the server URL we were provisioned with.
    pub(crate) server_uri: String,
    pub(crate) alert: AlertCode,
    pub(crate) next_msg_id: u32,
    pub(crate) expected_server_msg: u32,
    pub(crate) auth: AuthType,
    /// 212 received: no more credentials this session (not for HMAC).
    pub(crate) client_authed: bool,
    pub(crate) server_authed: bool,
    pub(crate) server_auth_failures: u8,
    pub(crate) server_max_msg: Option<u64>,
    pub(crate) server_max_obj: Option<u64>,
    pub(crate) sent: Vec<Sent>,
    pub(crate) outbox: VecDeque<Command>,
    pub(crate) outgoing: Option<OutgoingObject>,
    pub(crate) incoming: Option<IncomingObject>,
    /// Our package is closed: our last message carried Final, or it only asked for the rest
    /// of the server's package (Alert 1222) after one that did.
    pub(crate) sent_final: bool,
    /// The server's package is still open (its last message had no Final and no 1222): our
    /// next message asks for more with Alert 1222 and may not carry Final.
    pub(crate) server_package_open: bool,
    /// A nonce we put in a Chal for the server; adopted when that message is sent.
    pub(crate) pending_server_nonce: Option<Nonce>,
    /// We sent Alert 1223: the next reply ends the session.
    pub(crate) aborting: Option<SimError>,
    pub(crate) report: SessionReport,
}

/// The reply's effect on the session.
pub(crate) enum Next {
    Send,
    Done,
}

impl<'d> ClientSession<'d> {
    pub fn new(
        dev: &'d mut SimDevice,
        server_url: impl Into<String>,
        initiation: Initiation,
        opts: SessionOptions,
    ) -> Self {
        let server_uri = server_url.into();
        dev.begin_session_nonces();
        let (session_id, alert) = match initiation {
            Initiation::Client => (dev.next_session_id(), AlertCode::CLIENT_INITIATED_MGMT),
            Initiation::Server { session_id } => (
                crate::dm::package0::session_id_text(session_id),
                AlertCode::SERVER_INITIATED_MGMT,
            ),
        };
        let report = SessionReport {
            dev_id: dev.profile.dev_id.clone(),
            session_id,
            ..SessionReport::default()
        };
        Self {
            enc: dev.profile.encoding,
            auth: dev.profile.auth,
            dev,
            opts,
            url: server_uri.clone(),
            server_uri,
            alert,
            next_msg_id: 1,
            expected_server_msg: 1,
            client_authed: false,
            server_authed: false,
            server_auth_failures: 0,
            server_max_msg: None,
            server_max_obj: None,
            sent: Vec::new(),
            outbox: VecDeque::new(),
            outgoing: None,
            incoming: None,
            sent_final: false,
            server_package_open: false,
            pending_server_nonce: None,
            aborting: None,
            report,
        }
    }

    pub fn report(&self) -> &SessionReport {
        &self.report
    }

    pub fn into_report(self) -> SessionReport {
        self.report
    }

    pub(crate) fn error(&mut self, e: impl Into<String>) {
        let e = e.into();
        tracing::warn!(device.id = %self.report.dev_id, session.id = %self.report.session_id, "server violation: {e}");
        self.report.errors.push(e);
    }

    /// Drives the whole session over `transport`. On failure the report (with `failure`
    /// set) is still available from [`report`](Self::report).
    pub async fn run<T: Transport>(&mut self, transport: &T) -> Result<(), SimError> {
        let r = self.run_inner(transport).await;
        if let Err(e) = &r {
            self.report.failure = Some(e.to_string());
        }
        r
    }

    async fn run_inner<T: Transport>(&mut self, transport: &T) -> Result<(), SimError> {
        let mut req = self.start()?;
        loop {
            let reply = transport.post(req).await?;
            match self.on_reply(reply)? {
                Some(r) => req = r,
                None => return Ok(()),
            }
        }
    }

    /// Package 1: Alert 1200/1201, the DevInfo Replace, then owed Generic Alerts.
    pub fn start(&mut self) -> Result<HttpRequest, SimError> {
        self.outbox = self.package1();
        self.build()
    }

    fn package1(&self) -> VecDeque<Command> {
        let mut cmds = VecDeque::new();
        cmds.push_back(Command::Alert(Alert {
            cmd_id: Id::default(),
            no_resp: false,
            cred: None,
            data: self.alert,
            correlator: None,
            items: Vec::new(),
        }));
        let devinfo = ["DevId", "Man", "Mod", "DmV", "Lang"]
            .iter()
            .map(|leaf| {
                let uri = format!("./DevInfo/{leaf}");
                Item {
                    source: Some(Source::uri(uri.clone())),
                    data: Some(Data::Text(self.dev.tree.text(&uri).unwrap_or_default())),
                    ..Item::default()
                }
            })
            .collect();
        cmds.push_back(Command::Replace(ItemCommand {
            items: devinfo,
            ..ItemCommand::default()
        }));
        for a in &self.dev.pending_alerts {
            let failed = !(200..300).contains(&a.result_code);
            cmds.push_back(Command::Alert(Alert {
                cmd_id: Id::default(),
                no_resp: false,
                cred: None,
                data: AlertCode::GENERIC_ALERT,
                correlator: a.correlator.clone(),
                items: vec![Item {
                    source: Some(Source::uri(a.source.clone())),
                    meta: Some(Meta {
                        format: Some(Format::Int),
                        type_: Some(a.alert_type.clone()),
                        // Failures get something other than informational (brief 5.5).
                        mark: failed.then(|| "critical".to_owned()),
                        ..Meta::default()
                    }),
                    data: Some(Data::Text(a.result_code.to_string())),
                    ..Item::default()
                }],
            }));
        }
        cmds
    }

    /// Our credentials for the next message (SyncHdr Cred for basic/md5).
    pub(crate) fn client_cred(&self) -> Option<Cred> {
        if self.client_authed {
            return None;
        }
        let p = &self.dev.profile;
        let data = match self.auth {
            AuthType::Basic => basic_credential(&p.client_name, &p.client_secret),
            // Without a nonce we wait for the challenge (brief 2.5.1).
            AuthType::Md5 => {
                md5_credential(&self.dev.client_hash(), &self.dev.client_nonce.as_ref()?.0)
            }
            AuthType::Hmac => return None,
        };
        Some(Cred {
            meta: Some(Meta {
                format: Some(Format::B64),
                type_: Some(self.auth.type_uri().to_owned()),
                ..Meta::default()
            }),
            data,
        })
    }

    pub(crate) fn hmac_for(&self, body: &[u8]) -> Option<String> {
        if self.auth != AuthType::Hmac {
            return None;
        }
        let nonce = self.dev.client_nonce.as_ref()?;
        Some(
            HmacHeader {
                algorithm: Some("MD5".into()),
                username: self.dev.profile.client_name.clone(),
                mac: hmac_mac(&self.dev.client_hash(), &nonce.0, body),
            }
            .format(),
        )
    }

    pub(crate) fn header(&self, msg_id: u32) -> SyncHdr {
        let p = &self.dev.profile;
        SyncHdr {
            ver_dtd: "1.2".into(),
            ver_proto: "DM/1.2".into(),
            session_id: self.report.session_id.clone(),
            msg_id: Id::from(msg_id),
            target: Target::uri(self.server_uri.clone()),
            source: Source {
                loc_uri: p.dev_id.clone(),
                loc_name: Some(p.client_name.clone()),
            },
            cred: self.client_cred(),
            meta: Some(Meta {
                max_msg_size: Some(p.max_msg_size),
                max_obj_size: Some(p.max_obj_size),
                ..Meta::default()
            }),
            ..SyncHdr::default()
        }
    }

    /// Handles one HTTP reply. `Ok(None)`: the session is over.
    pub fn on_reply(&mut self, reply: HttpReply) -> Result<Option<HttpRequest>, SimError> {
        let size = reply.body.len() as u64;
        self.report.bytes_received += size;
        self.report.max_message_seen = self.report.max_message_seen.max(size);
        if reply.status != 200 {
            return Err(SimError::HttpStatus {
                url: self.url.clone(),
                status: reply.status,
            });
        }
        let max = self.dev.profile.max_msg_size;
        if size > max {
            self.error(format!(
                "server message of {size} bytes exceeds our MaxMsgSize {max} (brief 9.14)"
            ));
        }
        match reply.content_type.as_deref() {
            Some(ct)
                if ct
                    .trim()
                    .to_ascii_lowercase()
                    .starts_with(self.enc.content_type()) => {}
            other => self.error(format!(
                "reply Content-Type {other:?}, expected {} (brief 1.1)",
                self.enc.content_type()
            )),
        }
        let limits = Limits {
            max_message_bytes: usize::try_from(max)
                .unwrap_or(usize::MAX)
                .saturating_mul(4)
                .max(Limits::default().max_message_bytes),
            ..Limits::default()
        };
        let (msg, enc) = decode(&reply.body, &limits)?;
        if enc != self.enc {
            self.error(format!(
                "reply in {enc:?}, we sent {:?} (brief 1.1)",
                self.enc
            ));
        }
        if let Some(e) = self.aborting.take() {
            return Err(e);
        }
        self.pending_server_nonce = None;
        let next = self.process(&msg, &reply);
        let pending = self.pending_server_nonce.take();
        match next? {
            Next::Done => Ok(None),
            Next::Send => {
                if let Some(n) = pending {
                    self.dev.server_nonce = n;
                }
                if self.report.messages >= self.opts.max_messages {
                    return Err(SimError::TooManyMessages {
                        limit: self.opts.max_messages,
                    });
                }
                self.build().map(Some)
            }
        }
    }

    /// Header checks common to every server message.
    fn check_header(&mut self, msg: &SyncML) {
        let h = &msg.hdr;
        if h.ver_dtd.trim() != "1.2" || h.ver_proto.trim() != "DM/1.2" {
            self.error(format!(
                "VerDTD/VerProto {:?}/{:?}, expected 1.2/DM/1.2",
                h.ver_dtd, h.ver_proto
            ));
        }
        if h.session_id != self.report.session_id {
            self.error(format!(
                "SessionID {:?} is not our {:?} echoed verbatim (brief 9.1)",
                h.session_id, self.report.session_id
            ));
        }
        let expected = self.expected_server_msg;
        if h.msg_id.number() != Some(expected) {
            self.error(format!(
                "server MsgID {} where {expected} was due",
                h.msg_id
            ));
        }
        self.expected_server_msg = h.msg_id.number().unwrap_or(expected) + 1;
        if h.target.loc_uri != self.dev.profile.dev_id {
            self.error(format!(
                "server Target/LocURI {:?} is not our DevId",
                h.target.loc_uri
            ));
        }
        if let Some(u) = &h.resp_uri {
            self.url = u.clone();
        }
        if let Some(m) = &h.meta {
            if m.max_msg_size.is_some() {
                self.server_max_msg = m.max_msg_size;
            }
            if m.max_obj_size.is_some() {
                self.server_max_obj = m.max_obj_size;
            }
        }
    }

    fn process(&mut self, msg: &SyncML, reply: &HttpReply) -> Result<Next, SimError> {
        self.check_header(msg);
        let last_sent = self.next_msg_id - 1;
        let hdr_status = msg.body.commands.iter().find_map(|c| match c {
            Command::Status(s) if s.cmd_ref.as_ref().is_some_and(|r| r.as_str() == "0") => {
                Some(s.clone())
            }
            _ => None,
        });
        let code = match &hdr_status {
            Some(s) => {
                if s.msg_ref.as_ref().and_then(Id::number) != Some(last_sent) {
                    self.error(format!(
                        "SyncHdr Status MsgRef {:?}, our message was {last_sent}",
                        s.msg_ref
                    ));
                }
                s.data
            }
            None => {
                self.error(format!(
                    "no Status for the SyncHdr of our message {last_sent}"
                ));
                StatusCode::OK
            }
        };
        let has_commands = msg
            .body
            .commands
            .iter()
            .any(|c| !matches!(c, Command::Status(_)));
        if code == StatusCode::INVALID_CREDENTIALS || code == StatusCode::MISSING_CREDENTIALS {
            if has_commands {
                self.error(format!(
                    "management commands alongside SyncHdr {code} (brief 2.5.1)"
                ));
            }
            return self.on_challenge(code, hdr_status.and_then(|s| s.chal));
        }
        self.on_auth_accepted(code, hdr_status.as_ref());
        let server_verdict = self.verify_server(msg, reply);
        let mut answers = Vec::new();
        answers.push(self.header_status(msg, &server_verdict));
        for c in &msg.body.commands {
            if let Command::Status(s) = c {
                self.on_status(s);
            }
        }
        let server_final = msg.body.final_;
        if self.sent_final && server_final {
            self.check_all_answered();
        }
        if server_verdict.code.is_success() {
            self.execute_all(msg, &mut answers);
        } else {
            let why = server_verdict.reason.clone().unwrap_or_default();
            let expected = self.refusal_expected();
            if !expected {
                self.error(format!("server credentials refused: {why}"));
            }
            self.server_auth_failures += 1;
            self.report.server_auth_refusals += 1;
            if !has_commands && expected {
                // Nothing but Statuses and credentials we cannot verify: this client ends
                // the session (brief 2.5.7), which is what a server must avoid.
                return Ok(Next::Done);
            }
            if !has_commands {
                // A challenge-only reply is not allowed (brief 2.5.7): the session ends.
                return Err(SimError::ServerAuthFailed { reason: why });
            }
            for c in &msg.body.commands {
                if !matches!(c, Command::Status(_)) {
                    self.report.commands_received += 1;
                    answers.push(status_for(msg, c, server_verdict.code));
                }
            }
            if self.server_auth_failures > self.opts.max_auth_retries {
                answers.push(Command::Alert(Alert {
                    cmd_id: Id::default(),
                    no_resp: false,
                    cred: None,
                    data: AlertCode::SESSION_ABORT,
                    correlator: None,
                    items: Vec::new(),
                }));
                self.aborting = Some(SimError::ServerAuthFailed { reason: why });
            }
        }
        let server_wants_next = msg
            .body
            .commands
            .iter()
            .any(|c| matches!(c, Command::Alert(a) if a.data == AlertCode::NEXT_MESSAGE));
        if msg
            .body
            .commands
            .iter()
            .any(|c| matches!(c, Command::Alert(a) if a.data == AlertCode::SESSION_ABORT))
        {
            // A device receiving 1223 does not answer (brief 1.6).
            return Err(SimError::Aborted);
        }
        if server_final && self.incoming.take().is_some() {
            self.error("server closed its package with a Large Object unfinished");
        }
        // A server package may span messages (brief 1.6): a part without Final must still
        // carry something, commands or Statuses beyond the SyncHdr's; we ask for the rest.
        let carries_statuses = msg
            .body
            .commands
            .iter()
            .filter(|c| matches!(c, Command::Status(_)))
            .count()
            > 1;
        if !server_final && !server_wants_next && !has_commands && !carries_statuses {
            self.error("server message without Final, commands, Statuses or Alert 1222");
        }
        if server_wants_next && !server_final && self.outbox.is_empty() && self.outgoing.is_none() {
            self.error("Alert 1222 from the server although our package was complete");
        }
        let only_header_status = answers.len() == 1;
        let nothing_left = self.outbox.is_empty() && self.outgoing.is_none();
        if server_final && !has_commands && only_header_status && nothing_left {
            if !self.sent_final {
                self.error("server ended the session before our package was complete");
            }
            return Ok(Next::Done);
        }
        // New answers go first; leftovers of our open package follow.
        for c in answers.into_iter().rev() {
            self.outbox.push_front(c);
        }
        self.server_package_open = !server_final && !server_wants_next;
        Ok(Next::Send)
    }

    fn on_challenge(&mut self, code: StatusCode, chal: Option<Chal>) -> Result<Next, SimError> {
        if self.auth == AuthType::Basic
            && code == StatusCode::INVALID_CREDENTIALS
            && self.dev.profile.client_name.contains(':')
            && !self
                .report
                .errors
                .iter()
                .any(|e| e.starts_with("basic credentials"))
        {
            // Brief 2.2/2.3: the name is often the DevId (`IMEI:…`); a server that splits
            // B64(name:secret) at the first ':' cannot verify such a name.
            self.error(format!(
                "basic credentials refused; our name {:?} contains ':' (does the server split \
                 name:secret at the first ':'?)",
                self.dev.profile.client_name
            ));
        }
        let Some(chal) = chal else {
            // No challenge: the server gave up on us.
            return Err(SimError::AuthFailed {
                status: code.0,
                retries: self.report.auth_retries,
            });
        };
        if self.report.auth_retries >= self.opts.max_auth_retries {
            return Err(SimError::AuthFailed {
                status: code.0,
                retries: self.report.auth_retries,
            });
        }
        self.report.auth_retries += 1;
        match chal.meta.type_.as_deref().map(AuthType::from_type_uri) {
            // The challenged side answers with the requested type (brief 2.5.5).
            Some(Some(t)) => self.auth = t,
            Some(None) => self.error(format!("Chal with unknown Type {:?}", chal.meta.type_)),
            None => self.error("Chal without Meta/Type"),
        }
        match &chal.meta.next_nonce {
            Some(n) => self.adopt_client_nonce(n),
            None if self.auth.uses_nonce() => self.error("md5/HMAC Chal without NextNonce"),
            None => {}
        }
        if chal.meta.format.as_ref().is_some_and(|f| *f != Format::B64) {
            self.error("Chal Meta/Format is not b64");
        }
        // Restart Package 1 with credentials (brief 2.5.2); what we sent was answered with
        // the challenge code.
        self.sent.clear();
        self.client_authed = false;
        self.outgoing = None;
        self.incoming = None;
        self.outbox = self.package1();
        self.server_package_open = false;
        Ok(Next::Send)
    }

    fn on_auth_accepted(&mut self, code: StatusCode, s: Option<&Status>) {
        let nonce = s
            .and_then(|s| s.chal.as_ref())
            .and_then(|c| c.meta.next_nonce.as_deref());
        if let Some(n) = nonce {
            self.adopt_client_nonce(n);
        }
        match (self.auth, code) {
            (AuthType::Hmac, StatusCode::AUTHENTICATION_ACCEPTED) => {
                self.error("SyncHdr 212 under HMAC; the brief wants 200 every message (2.4)");
            }
            (AuthType::Hmac, StatusCode::OK) if nonce.is_none() => {
                self.error("HMAC: SyncHdr Status without a new NextNonce (brief 2.4)");
            }
            (_, StatusCode::AUTHENTICATION_ACCEPTED) => self.client_authed = true,
            (_, StatusCode::OK) => {}
            (_, other) => self.error(format!("SyncHdr Status {other} for our message")),
        }
    }

    /// The Status for the server's SyncHdr (with our Chal for its next credentials).
    fn header_status(&mut self, msg: &SyncML, v: &ServerVerdict) -> Command {
        Command::Status(Status {
            cmd_id: Id::default(),
            msg_ref: Some(msg.hdr.msg_id.clone()),
            cmd_ref: Some(Id::from(0)),
            cmd: "SyncHdr".into(),
            target_ref: vec![msg.hdr.target.loc_uri.clone()],
            source_ref: vec![msg.hdr.source.loc_uri.clone()],
            cred: None,
            chal: v.chal.clone(),
            data: v.code,
            items: Vec::new(),
        })
    }

    /// Checks the server's Status for one of our commands (MsgRef/CmdRef/Cmd, expected code).
    fn on_status(&mut self, s: &Status) {
        if s.cmd_ref.as_ref().is_some_and(|r| r.as_str() == "0") {
            return; // the SyncHdr status, handled above
        }
        let (Some(msg_ref), Some(cmd_ref)) = (&s.msg_ref, &s.cmd_ref) else {
            self.error(format!(
                "Status for {} without MsgRef or CmdRef (brief 9.8)",
                s.cmd
            ));
            return;
        };
        let (m, c) = (msg_ref.number(), cmd_ref.number());
        let Some(i) = self
            .sent
            .iter()
            .position(|x| Some(x.msg_id) == m && Some(x.cmd_id) == c)
        else {
            self.error(format!(
                "Status (MsgRef {msg_ref}, CmdRef {cmd_ref}) names no command we sent"
            ));
            return;
        };
        let sent = &mut self.sent[i];
        if sent.answered && sent.expect != Expect::Results {
            let e = format!("second Status for our {} {msg_ref}/{cmd_ref}", sent.cmd);
            self.error(e);
            return;
        }
        sent.answered = true;
        let (cmd, expect) = (sent.cmd.clone(), sent.expect.clone());
        if s.cmd != cmd {
            self.error(format!(
                "Status Cmd {:?} for our {cmd} {msg_ref}/{cmd_ref}",
                s.cmd
            ));
        }
        let code = s.data;
        match expect {
            Expect::Ok if code != StatusCode::OK => {
                self.error(format!("server answered our {cmd} with {code}"));
            }
            Expect::Report(a) => {
                if code == StatusCode::OK || code == StatusCode::ACCEPTED {
                    self.dev.pending_alerts.retain(|p| *p != a);
                } else {
                    self.error(format!(
                        "Generic Alert answered {code}; 200 or 202 expected (brief 1.10)"
                    ));
                }
            }
            Expect::Chunk if code != StatusCode::CHUNKED_ITEM_ACCEPTED => {
                self.error(format!("chunk of our Results answered {code}, not 213"));
                self.outgoing = None;
            }
            Expect::Results if code != StatusCode::OK => {
                self.error(format!("server refused our Results with {code}"));
            }
            _ => {}
        }
    }

    /// After the server's answer to our closing message: every command that needs a Status
    /// must have one.
    fn check_all_answered(&mut self) {
        let missing: Vec<String> = self
            .sent
            .iter()
            .filter(|s| {
                !s.answered && matches!(s.expect, Expect::Ok | Expect::Report(_) | Expect::Chunk)
            })
            .map(|s| format!("{} {}/{}", s.cmd, s.msg_id, s.cmd_id))
            .collect();
        self.sent
            .retain(|s| s.answered || matches!(s.expect, Expect::Nothing | Expect::Results));
        for m in missing {
            self.error(format!("no Status for our {m}"));
        }
    }
}

/// The device's judgement of the server's credentials in one message.
#[derive(Debug, Clone)]
pub(crate) struct ServerVerdict {
    pub code: StatusCode,
    pub chal: Option<Chal>,
    pub reason: Option<String>,
}

/// A Status answering `c` (of server message `msg`) with `code`; TargetRef from the first
/// Item.
pub(crate) fn status_for(msg: &SyncML, c: &Command, code: StatusCode) -> Command {
    let target_ref = match c {
        Command::Add(x)
        | Command::Copy(x)
        | Command::Delete(x)
        | Command::Get(x)
        | Command::Replace(x) => x
            .items
            .first()
            .and_then(|i| i.target.as_ref())
            .map(|t| vec![t.loc_uri.clone()])
            .unwrap_or_default(),
        Command::Exec(e) => e
            .item
            .target
            .as_ref()
            .map(|t| vec![t.loc_uri.clone()])
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    Command::Status(Status {
        cmd_id: Id::default(),
        msg_ref: Some(msg.hdr.msg_id.clone()),
        cmd_ref: Some(c.cmd_id().clone()),
        cmd: c.name().to_owned(),
        target_ref,
        source_ref: Vec::new(),
        cred: None,
        chal: None,
        data: code,
        items: Vec::new(),
    })
}

/// Runs one whole session and returns its report (errors inside it are server violations
/// that did not stop the session).
pub async fn run_session<T: Transport>(
    dev: &mut SimDevice,
    transport: &T,
    server_url: &str,
    initiation: Initiation,
) -> Result<SessionReport, SimError> {
    let mut s = ClientSession::new(dev, server_url, initiation, SessionOptions::default());
    s.run(transport).await?;
    Ok(s.into_report())
}

/// The empty message body used while measuring.
pub(crate) fn empty_body() -> SyncBody {
    SyncBody {
        commands: Vec::new(),
        final_: false,
    }
}
