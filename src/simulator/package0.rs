//! Package 0 on the device: parse the trigger, check the version and server id, verify the
//! digest of brief 4.2 with the device's own code and the brief's nonce fallbacks.

use md5::{Digest, Md5};

use crate::dm::auth::{CredentialHash, constant_time_eq, md5_b64};
use crate::dm::package0::{NOTIFICATION_VERSION, Package0Error, ParsedPackage0};

use super::device::SimDevice;

/// Why a notification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    #[error("malformed Package 0: {0}")]
    Malformed(String),
    #[error("notification version {0}, expected 11")]
    BadVersion(u16),
    #[error("notification for server id {got:?}, this device trusts {expected:?}")]
    UnknownServer { got: String, expected: String },
    #[error("Package 0 digest does not verify with any candidate nonce")]
    BadDigest,
    #[error("session id 0 is not allowed (1..0xFFFF)")]
    ZeroSessionId,
}

/// `MD5(B64(MD5(server-id ":" secret)) ":" nonce ":" B64(MD5(trigger)))`, computed here
/// independently of the server's code so that a wrong server formula shows up.
fn expected_digest(server: &CredentialHash, nonce: &[u8], trigger: &[u8]) -> [u8; 16] {
    let mut input = Vec::with_capacity(64 + nonce.len());
    input.extend_from_slice(server.0.as_bytes());
    input.push(b':');
    input.extend_from_slice(nonce);
    input.push(b':');
    input.extend_from_slice(md5_b64(trigger).as_bytes());
    Md5::digest(&input).into()
}

/// Which nonce candidate verified a notification (brief 4.2 order, then libdmclient's ASCII
/// default of brief 2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCandidate {
    StoredDecoded,
    StoredBase64Text,
    ZeroBytes,
    ZeroBase64Text,
    AsciiZeros,
}

impl SimDevice {
    /// Verifies a Package 0 and, when valid, remembers its session id for the next session
    /// (Alert 1200, SessionID in uppercase hex). Returns that session id.
    ///
    /// Both initiator values lead to a server-initiated session here (brief 4.4 describes
    /// Sprint opening a client-initiated one for initiator 0; the simulator keeps one path).
    pub fn accept_notification(&mut self, bytes: &[u8]) -> Result<u16, NotificationError> {
        let (session_id, _) = self.verify_notification(bytes)?;
        self.pending_notification = Some(session_id);
        Ok(session_id)
    }

    /// The checks of [`accept_notification`](Self::accept_notification) without changing
    /// the device; also says which nonce matched.
    pub fn verify_notification(
        &self,
        bytes: &[u8],
    ) -> Result<(u16, NonceCandidate), NotificationError> {
        let p = ParsedPackage0::parse(bytes).map_err(|e| match e {
            Package0Error::UnsupportedVersion(v) => NotificationError::BadVersion(v),
            e => NotificationError::Malformed(e.to_string()),
        })?;
        let n = &p.notification;
        if n.version != NOTIFICATION_VERSION {
            return Err(NotificationError::BadVersion(n.version));
        }
        if n.server_id != self.profile.server_id {
            return Err(NotificationError::UnknownServer {
                got: n.server_id.clone(),
                expected: self.profile.server_id.clone(),
            });
        }
        if n.session_id == 0 {
            return Err(NotificationError::ZeroSessionId);
        }
        // The digest covers the server id carried in the trigger (brief 4.2).
        let hash = CredentialHash::compute(&n.server_id, &self.profile.server_secret);
        let stored_text = self.server_nonce.to_b64();
        let candidates: [(NonceCandidate, &[u8]); 5] = [
            (NonceCandidate::StoredDecoded, &self.server_nonce.0),
            (NonceCandidate::StoredBase64Text, stored_text.as_bytes()),
            (NonceCandidate::ZeroBytes, &[0, 0, 0, 0]),
            (NonceCandidate::ZeroBase64Text, b"AAAAAA=="),
            (NonceCandidate::AsciiZeros, b"0x00000000"),
        ];
        let trigger = &bytes[16..];
        candidates
            .iter()
            .find(|(_, nonce)| constant_time_eq(&expected_digest(&hash, nonce, trigger), &p.digest))
            .map(|(c, _)| (n.session_id, *c))
            .ok_or(NotificationError::BadDigest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dm::auth::Nonce;
    use crate::simulator::DeviceProfile;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn device() -> SimDevice {
        let mut p = DeviceProfile::new("IMEI:1", "x");
        p.server_id = "com.mgmtsrv.manage".into();
        p.server_secret = "srvpwd".into();
        SimDevice::new(p)
    }

    /// Brief 4.2 vectors: secret `srvpwd`, nonce 4 zero bytes, session 0x1234.
    #[test]
    fn brief_vectors_verify() {
        let id = "636f6d2e6d676d74737276 2e6d616e616765";
        let ui1 = unhex(&format!(
            "e37fdc0f8e9070fc31b0967910b921af 02d0000000123412 {id}"
        ));
        let ui0 = unhex(&format!(
            "b95381e9da3d15b5c03d2d038bfa19e6 02c8000000123412 {id}"
        ));
        let mut d = device();
        assert_eq!(d.server_nonce, Nonce(vec![0; 4]));
        assert_eq!(
            d.verify_notification(&ui1),
            Ok((0x1234, NonceCandidate::StoredDecoded))
        );
        assert_eq!(d.accept_notification(&ui0), Ok(0x1234));
        assert_eq!(d.pending_notification, Some(0x1234));
        // A device whose stored nonce moved on still accepts via the zero-nonce fallback.
        d.issue_server_nonce();
        assert_eq!(
            d.verify_notification(&ui0),
            Ok((0x1234, NonceCandidate::ZeroBytes))
        );
        // One flipped digest bit, one flipped trigger bit.
        let mut bad = ui0.clone();
        bad[0] ^= 1;
        assert_eq!(
            d.verify_notification(&bad),
            Err(NotificationError::BadDigest)
        );
        let mut bad = ui0.clone();
        bad[22] ^= 1;
        assert_eq!(
            d.verify_notification(&bad),
            Err(NotificationError::BadDigest)
        );
    }

    #[test]
    fn refuses_wrong_secret_server_version_and_short_input() {
        let ui0 = unhex(
            "b95381e9da3d15b5c03d2d038bfa19e6 02c8000000123412 636f6d2e6d676d74737276 2e6d616e616765",
        );
        let mut d = device();
        d.profile.server_secret = "other".into();
        assert_eq!(
            d.accept_notification(&ui0),
            Err(NotificationError::BadDigest)
        );
        assert_eq!(d.pending_notification, None);
        let mut d = device();
        d.profile.server_id = "someone.else".into();
        assert!(matches!(
            d.verify_notification(&ui0),
            Err(NotificationError::UnknownServer { .. })
        ));
        let mut v12 = ui0.clone();
        v12[16] = 0x03; // version 12 = 0b00000011_00
        v12[17] &= 0x3F;
        assert_eq!(
            device().verify_notification(&v12),
            Err(NotificationError::BadVersion(12))
        );
        assert!(matches!(
            device().verify_notification(&ui0[..20]),
            Err(NotificationError::Malformed(_))
        ));
    }

    /// The stored nonce (as the server would use it after our Chal) verifies first.
    #[test]
    fn stored_nonce_roundtrip_with_server_builder() {
        use crate::dm::package0::{Initiator, Notification, UiMode};
        let mut d = device();
        let nonce = d.issue_server_nonce();
        let n = Notification {
            version: 11,
            ui_mode: UiMode::Background,
            initiator: Initiator::Server,
            session_id: 0x4D2,
            server_id: "com.mgmtsrv.manage".into(),
            vendor_specific: vec![1, 2, 3],
        };
        let bytes = n
            .build(
                &CredentialHash::compute("com.mgmtsrv.manage", "srvpwd"),
                &nonce.0,
            )
            .unwrap();
        assert_eq!(
            d.verify_notification(&bytes),
            Ok((0x4D2, NonceCandidate::StoredDecoded))
        );
    }
}
