//! `Reply`: the server message under construction, with CmdID allocation and size measuring.

use crate::dm::message::{Chal, CmdId, Command, Id, Status, StatusCode, SyncHdr, SyncML};
use crate::dm::{Encoding, encode};

pub(super) struct Reply {
    pub msg: SyncML,
    pub enc: Encoding,
    next_cmd: u32,
}

impl Reply {
    pub fn new(hdr: SyncHdr, enc: Encoding) -> Self {
        Self {
            msg: SyncML {
                hdr,
                ..SyncML::default()
            },
            enc,
            next_cmd: 1,
        }
    }

    /// CmdIDs restart at 1 in every message and are unique within it, nested ones included.
    pub fn cmd_id(&mut self) -> u32 {
        let id = self.next_cmd;
        self.next_cmd += 1;
        id
    }

    pub fn peek_cmd_id(&self) -> u32 {
        self.next_cmd
    }

    pub fn rewind_cmd_id(&mut self, to: u32) {
        self.next_cmd = to;
    }

    /// Appends a Status for command `cmd_ref` of the device's message `msg_ref`.
    pub fn status(
        &mut self,
        msg_ref: &Id,
        cmd_ref: &CmdId,
        cmd: &str,
        code: StatusCode,
    ) -> &mut Status {
        let cmd_id = Id::from(self.cmd_id());
        self.msg.body.commands.push(Command::Status(Status {
            cmd_id,
            msg_ref: Some(msg_ref.clone()),
            cmd_ref: Some(cmd_ref.clone()),
            cmd: cmd.to_owned(),
            target_ref: Vec::new(),
            source_ref: Vec::new(),
            cred: None,
            chal: None,
            data: code,
            items: Vec::new(),
        }));
        match self.msg.body.commands.last_mut() {
            Some(Command::Status(s)) => s,
            _ => unreachable!("a Status was just pushed"),
        }
    }

    pub fn header_status(&mut self, req: &SyncML, code: StatusCode, chal: Option<Chal>) {
        let s = self.status(&req.hdr.msg_id, &Id::from(0), "SyncHdr", code);
        s.target_ref.push(req.hdr.target.loc_uri.clone());
        s.source_ref.push(req.hdr.source.loc_uri.clone());
        s.chal = chal;
    }

    pub fn push(&mut self, c: Command) {
        self.msg.body.commands.push(c);
    }

    /// True when the message carries anything besides Status (i.e. something to answer).
    pub fn has_commands(&self) -> bool {
        self.msg
            .body
            .commands
            .iter()
            .any(|c| !matches!(c, Command::Status(_)))
    }

    pub fn encoded_len(&self) -> usize {
        encode(&self.msg, self.enc).len()
    }
}
