//! FUMO ResultCodes (brief 5.5) and what an update job does with each: success, a transient
//! failure worth another attempt, or a permanent one.

use serde::Serialize;

/// How a reported ResultCode (or a delivery status) is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The device says the update succeeded; the job still waits for the new FwV.
    Success,
    /// Worth another attempt after a backoff (network, server, memory, time-outs).
    Transient,
    /// Retrying cannot help (wrong package, bad signature, not implemented, …).
    Permanent,
}

/// One row of the classification table (documented in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    pub verdict: Verdict,
    /// The spec's meaning of the code, for history notes and the API.
    pub meaning: &'static str,
}

const fn row(verdict: Verdict, meaning: &'static str) -> Classification {
    Classification { verdict, meaning }
}

/// Classifies a FUMO ResultCode from a Generic Alert 1226.
pub fn classify(code: u32) -> Classification {
    use Verdict::{Permanent, Success, Transient};
    match code {
        200 => row(Success, "successful"),
        250..=299 => row(Success, "successful (vendor specific)"),
        400 => row(Permanent, "management client error"),
        // The user said no this time; a later attempt (another day, another window) may pass.
        401 => row(Transient, "user cancelled"),
        // Bytes damaged on the way: fetching them again usually fixes it.
        402 => row(Transient, "corrupted firmware update package"),
        403 => row(Permanent, "package-device mismatch"),
        404 => row(Permanent, "failed package validation (signature)"),
        405 => row(Permanent, "package not acceptable"),
        406 => row(Permanent, "alternate download authentication failure"),
        407 => row(Transient, "alternate download request time-out"),
        408 => row(Permanent, "not implemented"),
        409 => row(Permanent, "undefined error"),
        410 => row(Permanent, "firmware update failed"),
        411 => row(Permanent, "malformed or bad URL"),
        412 => row(Transient, "alternate download server unavailable"),
        450..=499 => row(Permanent, "client error (vendor specific)"),
        500 => row(Transient, "alternate download server error"),
        501 => row(Transient, "download failed: device out of memory"),
        502 => row(Transient, "update failed: device out of memory"),
        503 => row(Transient, "download failed: network or transport"),
        550..=599 => row(
            Transient,
            "alternate download server error (vendor specific)",
        ),
        _ => row(Permanent, "unknown result code"),
    }
}

/// Classifies the device's Status for a command of the delivery (Replace PkgURL, Exec, the
/// PkgData Large Object). 401/407 never reach here: they are the server's credentials and
/// the DM engine sends the command again (issue of DM correctness).
pub fn classify_command_status(status: u16) -> Classification {
    use Verdict::{Permanent, Transient};
    match status {
        200..=299 => row(Verdict::Success, "accepted"),
        // Busy or out of room right now.
        408 | 417 | 420 | 503 => row(Transient, "device busy or out of room"),
        404 => row(Permanent, "FUMO node not found"),
        405 => row(Permanent, "command not allowed on the FUMO node"),
        406 | 501 => row(Permanent, "FUMO operation not supported"),
        425 => row(Permanent, "permission denied"),
        _ => row(Transient, "command failed"),
    }
}

/// The FUMO `<x>/State` values (brief 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FumoState {
    Idle,
    DownloadFailed,
    DownloadProgressing,
    DownloadComplete,
    ReadyToUpdate,
    UpdateProgressing,
    UpdateFailedHaveData,
    UpdateFailedNoData,
    UpdateSuccessfulHaveData,
    UpdateSuccessfulNoData,
}

impl FumoState {
    pub fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            10 => Self::Idle,
            20 => Self::DownloadFailed,
            30 => Self::DownloadProgressing,
            40 => Self::DownloadComplete,
            50 => Self::ReadyToUpdate,
            60 => Self::UpdateProgressing,
            70 => Self::UpdateFailedHaveData,
            80 => Self::UpdateFailedNoData,
            90 => Self::UpdateSuccessfulHaveData,
            100 => Self::UpdateSuccessfulNoData,
            _ => return None,
        })
    }

    /// The device is still working on the job: keep waiting for its report.
    pub fn in_progress(self) -> bool {
        matches!(
            self,
            Self::DownloadProgressing
                | Self::DownloadComplete
                | Self::ReadyToUpdate
                | Self::UpdateProgressing
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_sorts_the_codes_the_issue_names() {
        assert_eq!(classify(200).verdict, Verdict::Success);
        assert_eq!(classify(260).verdict, Verdict::Success);
        for transient in [402, 407, 412, 500, 501, 502, 503, 560] {
            assert_eq!(
                classify(transient).verdict,
                Verdict::Transient,
                "{transient}"
            );
        }
        for permanent in [400, 403, 404, 405, 406, 408, 409, 410, 411, 470, 999] {
            assert_eq!(
                classify(permanent).verdict,
                Verdict::Permanent,
                "{permanent}"
            );
        }
    }

    #[test]
    fn fumo_states_in_progress() {
        assert!(FumoState::from_code(30).unwrap().in_progress());
        assert!(!FumoState::from_code(10).unwrap().in_progress());
        assert!(!FumoState::from_code(80).unwrap().in_progress());
        assert_eq!(FumoState::from_code(11), None);
    }
}
