//! Behaviours of real DM clients around server credentials that a simulated device can take
//! on, so the server is tested against them and not only against a well-behaved peer.

use serde::Serialize;

use crate::dm::auth::Nonce;

use super::device::SimDevice;
use super::session::ClientSession;

/// How the device keeps the nonces of its DM account between sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ServerAuthQuirk {
    /// Both nonces are kept across sessions; the server nonce starts at the spec's
    /// resynchronisation default of 4 zero bytes (brief 2.5), which is also the server's
    /// guess for a device that never gave it one.
    #[default]
    None,
    /// libdmclient's test client: the account starts with an empty server nonce and both
    /// nonces are forgotten between sessions. Server credentials computed over any other
    /// nonce are refused, 401 with a `Chal` (fresh NextNonce) on the SyncHdr and 401 on every
    /// command, and a server message with nothing but Statuses ends the session. Unless the
    /// server was provisioned with the empty nonce, its first credentials of every session
    /// are refused; that first refusal is expected, not a server violation. A second one in
    /// the same session (after our `Chal`) is.
    RefuseFirst,
}

impl ServerAuthQuirk {
    /// The server nonce a freshly provisioned device holds.
    pub(crate) fn initial_server_nonce(self) -> Nonce {
        match self {
            Self::None => Nonce(vec![0; 4]),
            Self::RefuseFirst => Nonce(Vec::new()),
        }
    }
}

impl SimDevice {
    /// At the start of a session: what the device remembers of its nonces.
    pub(crate) fn begin_session_nonces(&mut self) {
        let quirk = self.profile.server_auth_quirk;
        if quirk == ServerAuthQuirk::RefuseFirst {
            self.client_nonce = None;
            self.server_nonce = quirk.initial_server_nonce();
        }
    }
}

impl ClientSession<'_> {
    /// A refusal of the server's credentials that the quirk makes expected: the first one
    /// of a session, before the server could know our nonce.
    pub(crate) fn refusal_expected(&self) -> bool {
        self.dev.profile.server_auth_quirk == ServerAuthQuirk::RefuseFirst
            && self.server_auth_failures == 0
    }

    /// Adopts a `NextNonce` the server issued to us; text that is not base64 is a server
    /// violation and is not adopted (our next credential then keeps the previous nonce).
    pub(crate) fn adopt_client_nonce(&mut self, text: &str) {
        match Nonce::from_b64(text) {
            Ok(n) => self.dev.client_nonce = Some(n),
            Err(_) => self.error(format!(
                "NextNonce {text:?} is not base64 (brief 2.3); not adopted"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::DeviceProfile;

    #[test]
    fn refuse_first_starts_empty_and_forgets_between_sessions() {
        let mut p = DeviceProfile::new("IMEI:9", "s");
        p.server_auth_quirk = ServerAuthQuirk::RefuseFirst;
        let mut d = SimDevice::new(p);
        assert_eq!(d.server_nonce, Nonce(Vec::new()));
        d.issue_server_nonce();
        d.client_nonce = Some(Nonce(b"from the server".to_vec()));
        d.begin_session_nonces();
        assert_eq!(d.server_nonce, Nonce(Vec::new()));
        assert_eq!(d.client_nonce, None);
    }

    #[test]
    fn the_default_device_keeps_its_nonces() {
        let mut d = SimDevice::new(DeviceProfile::new("IMEI:9", "s"));
        assert_eq!(d.server_nonce, Nonce(vec![0; 4]));
        let n = d.issue_server_nonce();
        d.client_nonce = Some(Nonce(b"kept".to_vec()));
        d.begin_session_nonces();
        assert_eq!(d.server_nonce, n);
        assert_eq!(d.client_nonce, Some(Nonce(b"kept".to_vec())));
    }
}
