//! Stored nonces read back for the DM engine and Package 0.
//!
//! The store holds nonces as base64 text, written by the engine's effects or by provisioning
//! (which validates them). Text that does not decode is corrupt: it is logged as an error
//! and treated as unknown, which the protocol recovers from on its own. An unknown client
//! nonce means the device's next credential earns a challenge with a fresh nonce; an unknown
//! server nonce means our credentials start from the resynchronisation default and the
//! device's `Chal` re-seeds it. Reading it as raw bytes instead would make credentials that
//! can only fail, without a trace of why.

use crate::dm::auth::Nonce;

/// Which of a device's two nonces (brief 2.1).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Slot {
    /// CLCRED: the nonce we issued to the device.
    Client,
    /// SRVCRED: the nonce the device issued to us (also the Package 0 nonce).
    Server,
}

impl Slot {
    fn name(self) -> &'static str {
        match self {
            Slot::Client => "client",
            Slot::Server => "server",
        }
    }
}

/// The stored nonce `b64` of device `device_id`; `None` when none is stored or it is corrupt.
pub(crate) fn stored(device_id: &str, slot: Slot, b64: Option<&str>) -> Option<Nonce> {
    match Nonce::from_b64(b64?) {
        Ok(n) => Some(n),
        Err(err) => {
            // The value itself is never logged (nonces stay out of logs).
            tracing::error!(device.id = %device_id, nonce.slot = slot.name(), error = %err, "stored nonce is corrupt; treated as unknown, the challenge flow re-seeds it");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_text_is_unknown_and_the_empty_nonce_is_kept() {
        assert_eq!(stored("d", Slot::Client, None), None);
        assert_eq!(stored("d", Slot::Client, Some("%%%")), None);
        assert_eq!(stored("d", Slot::Server, Some("")), Some(Nonce(Vec::new())));
        assert_eq!(
            stored("d", Slot::Server, Some("AAAAAA==")),
            Some(Nonce(vec![0; 4]))
        );
    }
}
