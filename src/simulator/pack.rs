//! Building our next message: as many queued answers as fit the server's MaxMsgSize (measured
//! on the encoded body), our Large Object chunk if one is in flight, Alert 1222 while the
//! server's package is open, and Final only when our package is complete.

use crate::dm::encode;
use crate::dm::message::{Alert, AlertCode, Command, Data, Id, Results, SyncBody, SyncML};

use super::SimError;
use super::device::PendingAlert;
use super::objects::OutgoingObject;
use super::session::{ClientSession, Expect, Sent, empty_body};
use super::transport::HttpRequest;

/// Room kept for the SyncHdr Status and an Alert Status when deciding whether a Results
/// would fit a message of its own (otherwise it is chunked).
const NEXT_MESSAGE_OVERHEAD: usize = 400;

fn set_cmd_id(c: &mut Command, id: u32) {
    let id = Id::from(id);
    match c {
        Command::Add(x)
        | Command::Copy(x)
        | Command::Delete(x)
        | Command::Get(x)
        | Command::Replace(x) => x.cmd_id = id,
        Command::Alert(x) => x.cmd_id = id,
        Command::Atomic(x) | Command::Sequence(x) => x.cmd_id = id,
        Command::Exec(x) => x.cmd_id = id,
        Command::Results(x) => x.cmd_id = id,
        Command::Status(x) => x.cmd_id = id,
        Command::Unknown(x) => x.cmd_id = id,
    }
}

fn next_message_alert(cmd_id: u32) -> Command {
    Command::Alert(Alert {
        cmd_id: Id::from(cmd_id),
        no_resp: false,
        cred: None,
        data: AlertCode::NEXT_MESSAGE,
        correlator: None,
        items: Vec::new(),
    })
}

/// What we expect back for a command we send.
fn expect_for(c: &Command) -> Expect {
    match c {
        Command::Alert(a) if a.data == AlertCode::GENERIC_ALERT => {
            let item = a.items.first();
            let meta = item.and_then(|i| i.meta.as_ref());
            Expect::Report(PendingAlert {
                correlator: a.correlator.clone(),
                source: item
                    .and_then(|i| i.source.as_ref())
                    .map(|s| s.loc_uri.clone())
                    .unwrap_or_default(),
                alert_type: meta.and_then(|m| m.type_.clone()).unwrap_or_default(),
                result_code: item
                    .and_then(|i| i.data.as_ref())
                    .and_then(Data::as_text)
                    .and_then(|t| t.trim().parse().ok())
                    .unwrap_or_default(),
            })
        }
        Command::Alert(a) if a.data == AlertCode::SESSION_ABORT => Expect::Nothing,
        Command::Status(_) => Expect::Nothing,
        Command::Results(r) if r.items.iter().any(|i| i.more_data) => Expect::Chunk,
        Command::Results(_) => Expect::Results,
        _ => Expect::Ok,
    }
}

impl ClientSession<'_> {
    /// The server's MaxMsgSize, or ours until it sends one.
    fn send_limit(&self) -> usize {
        let m = self.server_max_msg.unwrap_or(self.dev.profile.max_msg_size);
        usize::try_from(m).unwrap_or(usize::MAX)
    }

    /// Encoded size of `msg` as it would go out with Final (and Alert 1222 when needed).
    fn measure(&self, msg: &SyncML, with_1222: bool) -> usize {
        let mut m = msg.clone();
        if with_1222 {
            m.body.commands.push(next_message_alert(999));
        }
        m.body.final_ = true;
        encode(&m, self.enc).len()
    }

    /// Builds, encodes and records our next message.
    pub(crate) fn build(&mut self) -> Result<HttpRequest, SimError> {
        let msg_id = self.next_msg_id;
        let limit = self.send_limit();
        let need_1222 = self.server_package_open;
        let mut msg = SyncML {
            hdr: self.header(msg_id),
            body: empty_body(),
        };
        let mut next_id = 1u32;
        let mut i = 0;
        while i < self.outbox.len() {
            let is_status = matches!(self.outbox[i], Command::Status(_));
            // Nothing but Statuses between the chunks of one object (brief 3.1).
            if self.outgoing.is_some() && !is_status {
                i += 1;
                continue;
            }
            let mut c = self.outbox[i].clone();
            set_cmd_id(&mut c, next_id);
            msg.body.commands.push(c);
            if self.measure(&msg, need_1222) <= limit {
                self.outbox.remove(i);
                next_id += 1;
                continue;
            }
            let Some(c) = msg.body.commands.pop() else {
                break;
            };
            if let Command::Results(r) = &c
                && self.too_big_for_any_message(&msg, &c, limit)
            {
                self.outbox.remove(i);
                if let Some(o) = OutgoingObject::from_results(r) {
                    self.outgoing = Some(o);
                } else {
                    // Several Items: one Results each, chunked one by one if need be.
                    for item in r.items.iter().rev() {
                        self.outbox.insert(
                            i,
                            Command::Results(Results {
                                items: vec![item.clone()],
                                ..r.clone()
                            }),
                        );
                    }
                }
                continue;
            }
            break;
        }
        if !self.outbox.iter().any(|c| matches!(c, Command::Status(_)))
            && let Some(mut o) = self.outgoing.take()
        {
            match self.plan_chunk(&msg, &o, next_id, limit, need_1222) {
                Some(len) => {
                    msg.body
                        .commands
                        .push(Command::Results(o.chunk(Id::from(next_id), len)));
                    next_id += 1;
                    o.offset += len;
                    if o.remaining() > 0 {
                        self.outgoing = Some(o);
                    }
                }
                None => {
                    let size = self.measure(&msg, need_1222);
                    if msg.body.commands.is_empty() {
                        return Err(SimError::MessageTooLarge { size, max: limit });
                    }
                    self.outgoing = Some(o);
                }
            }
        }
        if msg.body.commands.is_empty() && !self.outbox.is_empty() {
            let mut probe = msg.clone();
            probe.body.commands.push(self.outbox[0].clone());
            return Err(SimError::MessageTooLarge {
                size: self.measure(&probe, need_1222),
                max: limit,
            });
        }
        if need_1222 {
            msg.body.commands.push(next_message_alert(next_id));
        }
        msg.body.final_ = self.outbox.is_empty() && self.outgoing.is_none() && !need_1222;
        self.record(&msg, msg_id);
        let body = encode(&msg, self.enc);
        self.report.messages += 1;
        self.report.bytes_sent += body.len() as u64;
        // Asking for the rest of the server's package does not reopen ours.
        let only_asking = need_1222 && self.outbox.is_empty() && self.outgoing.is_none();
        self.sent_final = msg.body.final_ || (self.sent_final && only_asking);
        self.next_msg_id += 1;
        Ok(HttpRequest {
            url: self.url.clone(),
            content_type: self.enc.content_type().to_owned(),
            hmac: self.hmac_for(&body),
            body,
        })
    }

    fn too_big_for_any_message(&self, msg: &SyncML, c: &Command, limit: usize) -> bool {
        let alone = SyncML {
            hdr: msg.hdr.clone(),
            body: SyncBody {
                commands: vec![c.clone()],
                final_: true,
            },
        };
        self.measure(&alone, self.server_package_open) + NEXT_MESSAGE_OVERHEAD > limit
    }

    /// The largest next chunk of `o` that keeps the message within `limit`.
    fn plan_chunk(
        &self,
        msg: &SyncML,
        o: &OutgoingObject,
        cmd_id: u32,
        limit: usize,
        need_1222: bool,
    ) -> Option<usize> {
        let fits = |len: usize| {
            let mut m = msg.clone();
            m.body
                .commands
                .push(Command::Results(o.chunk(Id::from(cmd_id), len)));
            self.measure(&m, need_1222) <= limit
        };
        let all = o.remaining();
        // The rest fits: the last chunk (an object that fits whole is never chunked).
        if o.offset > 0 && fits(all) {
            return Some(all);
        }
        let (mut lo, mut hi) = (0usize, all - 1);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let len = o.align(mid);
            if len > 0 && fits(len) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let len = o.align(lo);
        (len > 0 && fits(len)).then_some(len)
    }

    fn record(&mut self, msg: &SyncML, msg_id: u32) {
        for c in &msg.body.commands {
            match c {
                Command::Status(_) => self.report.statuses_sent += 1,
                Command::Alert(a) if a.data == AlertCode::GENERIC_ALERT => {
                    self.report.generic_alerts_sent += 1;
                }
                _ => {}
            }
            let expect = expect_for(c);
            if expect != Expect::Nothing {
                self.sent.push(Sent {
                    msg_id,
                    cmd_id: c.cmd_id().number().unwrap_or_default(),
                    cmd: c.name().to_owned(),
                    expect,
                    answered: false,
                });
            }
        }
    }
}
