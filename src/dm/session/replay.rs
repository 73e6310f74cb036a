//! Messages the session has already answered (brief 1.7): a retransmission gets the same reply
//! and an older message is never executed again.

use super::state::{CachedReply, SessionState};

/// What to do with a device message before running the engine on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay<'a> {
    /// Not answered yet: process it.
    Fresh,
    /// The last answered MsgID again (an HTTP retry after a lost response, or the same message
    /// re-encoded): the stored reply, byte for byte, and no second execution.
    Repeat(&'a CachedReply),
    /// A MsgID older than the last answered one: out of sequence, refused unexecuted.
    Stale,
}

/// Classifies `msg_id` (with the request's digest `request_md5`) against the session state.
pub fn classify<'a>(state: &'a SessionState, msg_id: &str, request_md5: &str) -> Replay<'a> {
    let Some(cached) = &state.last_reply else {
        return Replay::Fresh;
    };
    let msg_id = msg_id.trim();
    let last = cached.device_msg_id.trim();
    if msg_id == last {
        // MsgID 1 again with other bytes is the device starting over under the same SessionID,
        // which the edge treats as a new session; inside the engine it is a fresh message.
        if msg_id == "1" && cached.request_md5 != request_md5 {
            return Replay::Fresh;
        }
        return Replay::Repeat(cached);
    }
    match (msg_id.parse::<u64>(), last.parse::<u64>()) {
        (Ok(n), Ok(l)) if n < l => Replay::Stale,
        _ => Replay::Fresh,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(msg_id: &str, md5: &str) -> SessionState {
        SessionState {
            last_reply: Some(CachedReply {
                device_msg_id: msg_id.into(),
                request_md5: md5.into(),
                body: b"reply".to_vec(),
                hmac_header: None,
                session_over: false,
            }),
            ..SessionState::default()
        }
    }

    #[test]
    fn nothing_answered_yet_is_fresh() {
        assert_eq!(classify(&SessionState::default(), "1", "x"), Replay::Fresh);
    }

    #[test]
    fn the_last_msg_id_again_repeats_the_stored_reply_whatever_its_bytes() {
        let st = answered("3", "aaa");
        assert!(matches!(classify(&st, "3", "aaa"), Replay::Repeat(c) if c.body == b"reply"));
        assert!(matches!(classify(&st, " 3 ", "bbb"), Replay::Repeat(_)));
    }

    #[test]
    fn an_older_msg_id_is_stale_and_a_newer_one_fresh() {
        let st = answered("3", "aaa");
        assert_eq!(classify(&st, "2", "ccc"), Replay::Stale);
        assert_eq!(classify(&st, "4", "ccc"), Replay::Fresh);
    }

    #[test]
    fn msg_id_one_with_other_bytes_starts_over() {
        let st = answered("1", "aaa");
        assert_eq!(classify(&st, "1", "bbb"), Replay::Fresh);
        assert!(matches!(classify(&st, "1", "aaa"), Replay::Repeat(_)));
    }
}
