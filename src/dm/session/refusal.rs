//! The reply to a message the engine must not process at all (an unknown device): a
//! SyncHdr Status with the refusal code, no Chal (there is nothing to retry), and Final.

use crate::dm::message::{Command, Source, Status, StatusCode, SyncBody, SyncHdr, SyncML, Target};

/// Builds the refusal of `message`; the session id is echoed verbatim (brief 9.1).
pub fn refusal(message: &SyncML, status: StatusCode, server_uri: &str) -> SyncML {
    let hdr = &message.hdr;
    SyncML {
        hdr: SyncHdr {
            ver_dtd: hdr.ver_dtd.clone(),
            ver_proto: hdr.ver_proto.clone(),
            session_id: hdr.session_id.clone(),
            msg_id: 1.into(),
            target: Target::uri(hdr.source.loc_uri.clone()),
            source: Source::uri(server_uri),
            ..SyncHdr::default()
        },
        body: SyncBody {
            commands: vec![Command::Status(Status {
                cmd_id: 1.into(),
                msg_ref: Some(hdr.msg_id.clone()),
                cmd_ref: Some("0".into()),
                cmd: "SyncHdr".into(),
                target_ref: vec![hdr.target.loc_uri.clone()],
                source_ref: vec![hdr.source.loc_uri.clone()],
                cred: None,
                chal: None,
                data: status,
                items: Vec::new(),
            })],
            final_: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dm::{Encoding, Limits, decode, encode};

    #[test]
    fn an_unknown_device_gets_a_401_on_its_header_and_nothing_else() {
        let request = SyncML {
            hdr: SyncHdr {
                ver_dtd: "1.2".into(),
                ver_proto: "DM/1.2".into(),
                session_id: "4A2".into(),
                msg_id: 1.into(),
                target: Target::uri("https://dm.example.net/dm"),
                source: Source::uri("IMEI:1234"),
                ..SyncHdr::default()
            },
            body: SyncBody::default(),
        };
        let reply = refusal(
            &request,
            StatusCode::INVALID_CREDENTIALS,
            "https://dm.example.net/dm",
        );
        for encoding in [Encoding::Xml, Encoding::Wbxml] {
            let (decoded, _) = decode(&encode(&reply, encoding), &Limits::default()).unwrap();
            assert_eq!(decoded.hdr.session_id, "4A2");
            assert_eq!(decoded.hdr.target.loc_uri, "IMEI:1234");
            assert!(decoded.body.final_);
            assert_eq!(decoded.body.commands.len(), 1);
            let Command::Status(status) = &decoded.body.commands[0] else {
                panic!("not a status")
            };
            assert_eq!(status.data, StatusCode::INVALID_CREDENTIALS);
            assert_eq!(status.cmd, "SyncHdr");
            assert!(status.chal.is_none());
        }
    }
}
