//! Package 0: the General Notification Initiated Session trigger (brief 4.1-4.2).
//!
//! Layout (big-endian): digest[16] | version:10 | ui-mode:2 | initiator:1 | future-use:27 |
//! sessionid:16 | length-identifier:8 | server-identifier | vendor-specific. The digest is
//! MD5(B64(MD5(server-id:server-secret)) ":" nonce ":" B64(MD5(trigger))), raw 16 bytes, where
//! `trigger` is everything after the digest and `nonce` the decoded SRVCRED nonce.

use md5::{Digest, Md5};

use crate::dm::auth::{CredentialHash, constant_time_eq, md5_b64};

/// The notification version DM 1.2 uses: 11 ("1.1"); libdmclient rejects anything else.
pub const NOTIFICATION_VERSION: u16 = 11;

/// `ui-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum UiMode {
    NotSpecified = 0,
    Background = 1,
    Informative = 2,
    UserInteraction = 3,
}

impl UiMode {
    fn from_bits(b: u8) -> Self {
        match b & 3 {
            1 => Self::Background,
            2 => Self::Informative,
            3 => Self::UserInteraction,
            _ => Self::NotSpecified,
        }
    }
}

/// `initiator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Initiator {
    /// 0: user/client initiated (Sprint then opens a client-initiated FOTA session).
    Client = 0,
    /// 1: server initiated (device answers with Alert 1200).
    Server = 1,
}

/// The trigger fields of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// 10-bit version ×10; use [`NOTIFICATION_VERSION`].
    pub version: u16,
    pub ui_mode: UiMode,
    pub initiator: Initiator,
    /// Becomes the session's `SessionID` as uppercase hex (see [`session_id_text`]).
    pub session_id: u16,
    /// The DMAcc ServerID; ASCII, at most 255 bytes (Sprint: < 24 chars, brief 9.24).
    pub server_id: String,
    pub vendor_specific: Vec<u8>,
}

/// Why a Package 0 could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Package0Error {
    #[error("notification shorter than its fixed header")]
    Truncated,
    #[error("server identifier longer than 255 bytes")]
    ServerIdTooLong,
    #[error("version {0} does not fit in 10 bits")]
    BadVersion(u16),
    #[error("server identifier is not valid text")]
    BadServerId,
    /// A received notification whose version is not 11; DM 1.2 devices must ignore it
    /// (brief 4.1, libdmclient rejects it too).
    #[error("notification version {0}, DM 1.2 uses 11")]
    UnsupportedVersion(u16),
}

/// The `SessionID` a device uses after this trigger: uppercase hex, no leading zeros
/// (0x04D2 → `4D2`, brief 1.3).
pub fn session_id_text(id: u16) -> String {
    format!("{id:X}")
}

impl Notification {
    /// The `trigger` bytes (everything after the digest).
    pub fn trigger(&self) -> Result<Vec<u8>, Package0Error> {
        if self.version > 0x3FF {
            return Err(Package0Error::BadVersion(self.version));
        }
        let id = self.server_id.as_bytes();
        let len = u8::try_from(id.len()).map_err(|_| Package0Error::ServerIdTooLong)?;
        let mut t = Vec::with_capacity(8 + id.len() + self.vendor_specific.len());
        // 10 bits version, 2 bits ui-mode, 1 bit initiator, then 27 zero bits.
        let head: u16 =
            (self.version << 6) | ((self.ui_mode as u16) << 4) | ((self.initiator as u16) << 3);
        t.extend_from_slice(&head.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0]);
        t.extend_from_slice(&self.session_id.to_be_bytes());
        t.push(len);
        t.extend_from_slice(id);
        t.extend_from_slice(&self.vendor_specific);
        Ok(t)
    }

    /// The full Package 0: digest over the trigger, then the trigger.
    pub fn build(&self, server: &CredentialHash, nonce: &[u8]) -> Result<Vec<u8>, Package0Error> {
        let trigger = self.trigger()?;
        let mut out = digest(server, nonce, &trigger).to_vec();
        out.extend_from_slice(&trigger);
        Ok(out)
    }
}

/// `digest = MD5(B64(MD5(id:secret)) ":" nonce ":" B64(MD5(trigger)))`, raw bytes.
pub fn digest(server: &CredentialHash, nonce: &[u8], trigger: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(server.0.as_bytes());
    h.update(b":");
    h.update(nonce);
    h.update(b":");
    h.update(md5_b64(trigger).as_bytes());
    h.finalize().into()
}

/// A received Package 0 (what the device simulator parses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPackage0 {
    pub digest: [u8; 16],
    pub notification: Notification,
    /// The exact trigger bytes the digest covers.
    pub trigger: Vec<u8>,
}

impl ParsedPackage0 {
    /// Parses a notification; refuses any version other than [`NOTIFICATION_VERSION`] with
    /// [`Package0Error::UnsupportedVersion`].
    pub fn parse(bytes: &[u8]) -> Result<Self, Package0Error> {
        if bytes.len() < 24 {
            return Err(Package0Error::Truncated);
        }
        let digest: [u8; 16] = bytes[..16]
            .try_into()
            .map_err(|_| Package0Error::Truncated)?;
        let t = &bytes[16..];
        let head = u16::from_be_bytes([t[0], t[1]]);
        if head >> 6 != NOTIFICATION_VERSION {
            return Err(Package0Error::UnsupportedVersion(head >> 6));
        }
        let len = usize::from(t[7]);
        let id = t.get(8..8 + len).ok_or(Package0Error::Truncated)?;
        let server_id = std::str::from_utf8(id)
            .map_err(|_| Package0Error::BadServerId)?
            .to_owned();
        Ok(Self {
            digest,
            notification: Notification {
                version: head >> 6,
                ui_mode: UiMode::from_bits((head >> 4) as u8),
                initiator: if head & 0x8 != 0 {
                    Initiator::Server
                } else {
                    Initiator::Client
                },
                session_id: u16::from_be_bytes([t[5], t[6]]),
                server_id,
                vendor_specific: t[8 + len..].to_vec(),
            },
            trigger: t.to_vec(),
        })
    }

    /// Verifies the digest with one nonce.
    pub fn verify(&self, server: &CredentialHash, nonce: &[u8]) -> bool {
        constant_time_eq(&digest(server, nonce, &self.trigger), &self.digest)
    }

    /// Device-side check with the resynchronisation fallbacks (brief 4.2, 2.5): Sprint's
    /// stored nonce decoded and raw, then `AAAAAA==` decoded (4 zero bytes) and raw, then
    /// libdmclient's default, the ten ASCII characters `0x00000000`. Returns the index of the
    /// candidate that matched.
    pub fn verify_with_fallbacks(
        &self,
        server: &CredentialHash,
        stored_next_nonce_b64: &str,
    ) -> Option<usize> {
        // Stored text that is not base64 has no decoded form: that candidate is skipped.
        let decoded = crate::dm::auth::Nonce::from_b64(stored_next_nonce_b64).ok();
        let candidates: [Option<&[u8]>; 5] = [
            decoded.as_ref().map(|n| n.0.as_slice()),
            Some(stored_next_nonce_b64.as_bytes()),
            Some(&[0, 0, 0, 0]),
            Some(b"AAAAAA=="),
            Some(b"0x00000000"),
        ];
        candidates
            .iter()
            .position(|n| n.is_some_and(|n| self.verify(server, n)))
    }
}
