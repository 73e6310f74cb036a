//! The device refusing our credentials (brief 2.5, 2.6): the commands of that message were
//! not executed, so they go out again in the next message instead of failing.
//!
//! libdmclient's test client, given server md5 credentials over a nonce it does not hold,
//! answers 401 with a `Chal` on our SyncHdr and 401 on every command. Our next message
//! carries credentials over the nonce of that `Chal`; if it carried only Statuses the device
//! would end the session (a client with nothing but Statuses to send stops), so the refused
//! commands must be in it.

use crate::dm::message::{Command, StatusCode, SyncML};

use super::effect::Effect;
use super::state::SessionState;

/// Whether `msg`'s Status for our SyncHdr refuses our credentials (401 wrong, 407 missing).
/// Read before the commands are handled, whatever the order of the Statuses.
pub(super) fn refuses_our_credentials(msg: &SyncML) -> bool {
    msg.body.commands.iter().any(|c| match c {
        Command::Status(s) => {
            let header =
                s.cmd_ref.as_ref().and_then(|r| r.number()) == Some(0) || s.cmd == "SyncHdr";
            header && is_credential_refusal(s.data)
        }
        _ => false,
    })
}

/// 401 and 407 on a command: not executed for want of (valid) credentials.
pub(super) fn is_credential_refusal(code: StatusCode) -> bool {
    code == StatusCode::INVALID_CREDENTIALS || code == StatusCode::MISSING_CREDENTIALS
}

/// Puts operation `op_id` back among the unsent ones of the session: the next message that
/// has room carries it again (with credentials over the device's new nonce).
pub(super) fn requeue(
    st: &mut SessionState,
    op_id: String,
    status: StatusCode,
    fx: &mut Vec<Effect>,
) {
    st.sent_ops.retain(|id| *id != op_id);
    fx.push(Effect::OperationRequeued { op_id, status });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dm::message::{Id, Status};

    fn with_status(cmd_ref: &str, cmd: &str, code: StatusCode) -> SyncML {
        let mut m = SyncML::default();
        m.body.commands.push(Command::Status(Status {
            cmd_id: Id::from(1),
            msg_ref: Some(Id::from(1)),
            cmd_ref: Some(Id(cmd_ref.into())),
            cmd: cmd.into(),
            target_ref: Vec::new(),
            source_ref: Vec::new(),
            cred: None,
            chal: None,
            data: code,
            items: Vec::new(),
        }));
        m
    }

    #[test]
    fn only_a_refusal_on_the_synchdr_counts() {
        let refused = with_status("0", "SyncHdr", StatusCode::INVALID_CREDENTIALS);
        assert!(refuses_our_credentials(&refused));
        let missing = with_status("0", "SyncHdr", StatusCode::MISSING_CREDENTIALS);
        assert!(refuses_our_credentials(&missing));
        assert!(!refuses_our_credentials(&with_status(
            "0",
            "SyncHdr",
            StatusCode::AUTHENTICATION_ACCEPTED
        )));
        // A 401 on a command alone does not say the device refused our credentials.
        assert!(!refuses_our_credentials(&with_status(
            "3",
            "Get",
            StatusCode::INVALID_CREDENTIALS
        )));
    }

    #[test]
    fn requeue_makes_the_operation_unsent_again() {
        let mut st = SessionState {
            sent_ops: vec!["a".into(), "b".into()],
            ..SessionState::default()
        };
        let mut fx = Vec::new();
        requeue(
            &mut st,
            "a".into(),
            StatusCode::INVALID_CREDENTIALS,
            &mut fx,
        );
        assert_eq!(st.sent_ops, vec!["b".to_owned()]);
        assert_eq!(
            fx,
            vec![Effect::OperationRequeued {
                op_id: "a".into(),
                status: StatusCode::INVALID_CREDENTIALS
            }]
        );
    }
}
