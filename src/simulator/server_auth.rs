//! The device checking the server: SyncHdr `Cred` (basic/md5) or the `x-syncml-hmac` header,
//! against the SRVCRED secret and the nonce the device issued (brief 2.4, 2.6).

use crate::dm::auth::{
    AuthType, HmacHeader, basic_credential, constant_time_eq, hmac_mac, md5_credential,
};
use crate::dm::message::{Chal, Format, Meta, StatusCode, SyncML};

use super::session::{ClientSession, ServerVerdict};
use super::transport::HttpReply;

impl ClientSession<'_> {
    fn chal(&mut self, auth: AuthType) -> Chal {
        // Committed as the device's server nonce only if the message carrying it is sent.
        let nonce = auth.uses_nonce().then(|| {
            let n = self.dev.fresh_nonce();
            let text = n.to_b64();
            self.pending_server_nonce = Some(n);
            text
        });
        Chal {
            meta: Meta {
                format: Some(Format::B64),
                type_: Some(auth.type_uri().to_owned()),
                next_nonce: nonce,
                ..Meta::default()
            },
        }
    }

    fn refuse(&mut self, auth: AuthType, missing: bool, reason: String) -> ServerVerdict {
        ServerVerdict {
            code: if missing {
                StatusCode::MISSING_CREDENTIALS
            } else {
                StatusCode::INVALID_CREDENTIALS
            },
            chal: Some(self.chal(auth)),
            reason: Some(reason),
        }
    }

    /// The verdict on the server's credentials in `msg`, with the Chal to attach: md5
    /// accepted ⇒ 212 and a new nonce for next time; HMAC ⇒ 200 and a new nonce every message.
    pub(crate) fn verify_server(&mut self, msg: &SyncML, reply: &HttpReply) -> ServerVerdict {
        let ok = |code| ServerVerdict {
            code,
            chal: None,
            reason: None,
        };
        let Some(auth) = self.dev.profile.server_auth else {
            return ok(StatusCode::OK);
        };
        let server_id = self.dev.profile.server_id.clone();
        let hash = self.dev.server_hash();
        if auth == AuthType::Hmac {
            let Some(h) = reply.hmac.as_deref() else {
                return self.refuse(auth, true, "no x-syncml-hmac header".into());
            };
            let Some(h) = HmacHeader::parse(h) else {
                return self.refuse(auth, false, format!("unparsable x-syncml-hmac {h:?}"));
            };
            if h.username != server_id {
                let why = format!("HMAC username {:?} is not the ServerID", h.username);
                return self.refuse(auth, false, why);
            }
            let mac = hmac_mac(&hash, &self.dev.server_nonce.0, &reply.body);
            if !constant_time_eq(mac.as_bytes(), h.mac.trim().as_bytes()) {
                return self.refuse(auth, false, "HMAC mac does not verify".into());
            }
            self.server_authed = true;
            let chal = self.chal(auth);
            return ServerVerdict {
                code: StatusCode::OK,
                chal: Some(chal),
                reason: None,
            };
        }
        let Some(cred) = &msg.hdr.cred else {
            if self.server_authed {
                return ok(StatusCode::OK);
            }
            return self.refuse(auth, true, "no server Cred (brief 2.6)".into());
        };
        let meta = cred.meta.as_ref();
        let ty = meta.and_then(|m| m.type_.as_deref());
        if ty.and_then(AuthType::from_type_uri) != Some(auth) {
            return self.refuse(auth, false, format!("server Cred Type {ty:?}"));
        }
        if meta.and_then(|m| m.format.as_ref()) != Some(&Format::B64) {
            self.error("server Cred without Meta/Format b64 (brief 2.6)");
        }
        if let Some(n) = &msg.hdr.source.loc_name
            && *n != server_id
        {
            let why = format!("server LocName {n:?} is not the ServerID");
            return self.refuse(auth, false, why);
        }
        let expected = match auth {
            AuthType::Basic => basic_credential(&server_id, &self.dev.profile.server_secret),
            _ => md5_credential(&hash, &self.dev.server_nonce.0),
        };
        if !constant_time_eq(expected.as_bytes(), cred.data.trim().as_bytes()) {
            return self.refuse(auth, false, "server Cred does not verify".into());
        }
        self.server_authed = true;
        let chal = (auth == AuthType::Md5).then(|| self.chal(auth));
        ServerVerdict {
            code: StatusCode::AUTHENTICATION_ACCEPTED,
            chal,
            reason: None,
        }
    }
}
