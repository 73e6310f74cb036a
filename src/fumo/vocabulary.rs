//! The vocabulary of an update job's state machine: delivery modes and stages, what its
//! commands are for, the events it steps on, the actions and transitions it returns.

use serde::{Deserialize, Serialize};

use super::job::JobState;
use super::select::Choice;

/// How the package reaches the device (resolved: `auto` is decided before it gets here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `Replace <x>/DownloadAndUpdate/PkgURL` + `Exec <x>/DownloadAndUpdate`.
    Url,
    /// `Replace <x>/Download/PkgURL` + `Exec <x>/Download`, then `Exec <x>/Update`.
    UrlTwoStep,
    /// `Replace <x>/Update/PkgData` as a Large Object + `Exec <x>/Update`.
    Inline,
}

/// Which FUMO Exec the job is waiting on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    DownloadAndUpdate,
    Download,
    Update,
}

impl Stage {
    /// The FUMO child node the Exec targets.
    pub fn node_name(self) -> &'static str {
        match self {
            Self::DownloadAndUpdate => "DownloadAndUpdate",
            Self::Download => "Download",
            Self::Update => "Update",
        }
    }
}

/// What an operation the job queued is for (its owner tag says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    ReadFwV,
    Discover,
    ReadState,
    PkgUrl,
    PkgData,
    Exec,
}

/// The settings the state machine needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long after an accepted Exec the report is expected before the device is chased.
    pub report_timeout_ms: i64,
    /// Backoff of the first retry; doubled each attempt, capped.
    pub retry_base_ms: i64,
    pub retry_cap_ms: i64,
}

/// What the edge must do for the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Queue a read for the device's current (or next) session.
    Read { purpose: Purpose, uri: String },
    /// Queue the FUMO discovery reads (the configured roots, `?list=Struct`).
    Discover,
    /// Queue the delivery commands (PkgURL or PkgData, then the Exec) in one sequence.
    Deliver {
        node: String,
        mode: Mode,
        package_id: i64,
        correlator: String,
    },
    /// Queue `Exec <node>/Update` (second step of the two-step flow).
    ExecUpdate { node: String, correlator: String },
    /// Send a Package 0 so that the device opens a session.
    Notify,
    /// Cancel the job's operations that were not sent yet.
    CancelQueued,
}

/// A fact from one device message, for this job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// The first message of a device session.
    SessionOpened,
    /// `./DevDetail/FwV` as read in this session, with the package choice made from it.
    FwV { version: &'a str, choice: Choice },
    /// FUMO discovery ended: the node, or none.
    Discovered(Option<String>),
    /// The device's Status for one of the job's commands.
    Status { purpose: Purpose, code: u16 },
    /// One of the job's commands could not be delivered (or was sent and never answered).
    NotDelivered {
        purpose: Purpose,
        reason: &'a str,
        /// Sent, but the session ended without a Status: the device may have executed it.
        maybe_executed: bool,
    },
    /// A Generic Alert 1226 matched to this job.
    Report {
        code: Option<u32>,
        alert_type: Option<&'a str>,
    },
    /// `<x>/State` as read.
    State(u32),
    /// Time passes (the worker's tick).
    Tick,
}

/// One transition, for the job's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: JobState,
    pub to: JobState,
    pub note: String,
}

/// What one event did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Step {
    pub actions: Vec<Action>,
    pub transitions: Vec<Transition>,
}
