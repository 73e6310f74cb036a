//! An update job as pure data, and its state machine: facts from the device's sessions and
//! the passing of time go in, transitions and actions for the edge come out.

use serde::{Deserialize, Serialize};

use super::result_code::{FumoState, Verdict, classify, classify_command_status};
use super::select::{Choice, PackageKind};
use super::vocabulary::{Action, Event, Mode, Policy, Purpose, Stage, Step, Transition};

/// Where a job is. Final states: succeeded, failed, timed_out, cancelled, incompatible.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[schema(as = UpdateState)]
pub enum JobState {
    /// Created; waiting for the device's next session.
    Pending,
    /// Package 0 sent; waiting for the device's session.
    Notified,
    /// The device is in session: its FwV (and FUMO node) are being read.
    InSession,
    /// The package is on its way: PkgURL and Exec sent, or PkgData streaming.
    Downloading,
    /// The device answered the Exec with 202: its report follows in a Generic Alert 1226.
    Accepted,
    /// The report came with a success code; the new FwV is being read.
    Confirming,
    /// A transient failure: the next attempt is due at `due_at_ms`.
    RetryWait,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    Incompatible,
}

impl JobState {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::TimedOut | Self::Cancelled | Self::Incompatible
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Notified => "notified",
            Self::InSession => "in_session",
            Self::Downloading => "downloading",
            Self::Accepted => "accepted",
            Self::Confirming => "confirming",
            Self::RetryWait => "retry_wait",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
            Self::Incompatible => "incompatible",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "notified" => Self::Notified,
            "in_session" => Self::InSession,
            "downloading" => Self::Downloading,
            "accepted" => Self::Accepted,
            "confirming" => Self::Confirming,
            "retry_wait" => Self::RetryWait,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "timed_out" => Self::TimedOut,
            "cancelled" => Self::Cancelled,
            "incompatible" => Self::Incompatible,
            _ => return None,
        })
    }
}

/// An update job's state as the machine sees it (the store keeps the rest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: i64,
    pub state: JobState,
    /// 1-based; the Correlator names it.
    pub attempt: u32,
    pub max_attempts: u32,
    pub target_version: String,
    pub mode: Option<Mode>,
    pub stage: Option<Stage>,
    pub fumo_node: Option<String>,
    pub package: Option<(i64, PackageKind)>,
    pub result_code: Option<u32>,
    pub failure: Option<String>,
    pub confirmed_version: Option<String>,
    /// When the next time-based step is due (a retry, a report chase).
    pub due_at_ms: Option<i64>,
    pub deadline_ms: Option<i64>,
    /// Package 0s sent to chase a missing report.
    pub chases: u32,
    /// An Exec of this attempt went out: it is never sent again without a verdict on it.
    pub exec_sent: bool,
    /// The first retry's backoff for this job (a campaign's retry policy), instead of the
    /// service-wide one.
    #[serde(default)]
    pub retry_base_ms: Option<i64>,
}

impl Job {
    /// The Correlator of the current attempt: short ASCII, as some clients copy it into fixed
    /// buffers (brief 5.8).
    pub fn correlator(&self) -> String {
        correlator(self.id, self.attempt)
    }

    fn go(&mut self, step: &mut Step, to: JobState, note: impl Into<String>) {
        step.transitions.push(Transition {
            from: self.state,
            to,
            note: note.into(),
        });
        self.state = to;
    }

    fn fail(&mut self, step: &mut Step, reason: impl Into<String>) {
        let reason = reason.into();
        self.failure = Some(reason.clone());
        self.due_at_ms = None;
        step.actions.push(Action::CancelQueued);
        self.go(step, JobState::Failed, reason);
    }

    /// A transient failure: retried after a backoff while attempts remain, else failed.
    fn retry_or_fail(&mut self, step: &mut Step, reason: String, now_ms: i64, policy: &Policy) {
        if self.attempt >= self.max_attempts {
            return self.fail(step, format!("{reason}; no attempts left"));
        }
        let exp = self.attempt.saturating_sub(1).min(20);
        let base = self.retry_base_ms.unwrap_or(policy.retry_base_ms);
        let backoff = base
            .saturating_mul(1i64 << exp)
            .min(policy.retry_cap_ms.max(base));
        self.failure = Some(reason.clone());
        self.due_at_ms = Some(now_ms + backoff);
        step.actions.push(Action::CancelQueued);
        self.go(
            step,
            JobState::RetryWait,
            format!(
                "{reason}; attempt {} in {} s",
                self.attempt + 1,
                backoff / 1000
            ),
        );
    }

    fn deliver(&mut self, step: &mut Step) {
        let (Some(node), Some((package_id, _)), Some(mode)) =
            (self.fumo_node.clone(), self.package, self.mode)
        else {
            return;
        };
        self.stage = Some(match mode {
            Mode::Url => Stage::DownloadAndUpdate,
            Mode::UrlTwoStep => Stage::Download,
            Mode::Inline => Stage::Update,
        });
        self.exec_sent = true;
        step.actions.push(Action::Deliver {
            node,
            mode,
            package_id,
            correlator: self.correlator(),
        });
        self.go(step, JobState::Downloading, "package sent");
    }

    /// Package 0 went out for a job waiting for its device.
    pub fn notified(&mut self) -> Step {
        let mut step = Step::default();
        if self.state == JobState::Pending {
            self.go(&mut step, JobState::Notified, "Package 0 sent");
        }
        step
    }

    /// Cancels the job if the device has not been given its Exec; `false` when it has (the
    /// device may be installing: the job runs to its verdict).
    pub fn cancel(&mut self) -> Option<Step> {
        if self.state.is_final() || self.exec_sent {
            return None;
        }
        let mut step = Step::default();
        self.due_at_ms = None;
        step.actions.push(Action::CancelQueued);
        self.go(&mut step, JobState::Cancelled, "cancelled");
        Some(step)
    }

    /// Applies one event at `now_ms`.
    pub fn on(&mut self, event: Event<'_>, now_ms: i64, policy: &Policy) -> Step {
        let mut step = Step::default();
        if self.state.is_final() {
            return step;
        }
        if let Some(deadline) = self.deadline_ms
            && now_ms >= deadline
        {
            self.due_at_ms = None;
            step.actions.push(Action::CancelQueued);
            self.go(&mut step, JobState::TimedOut, "deadline passed");
            return step;
        }
        match event {
            Event::SessionOpened => self.on_session(&mut step),
            Event::FwV { version, choice } => {
                self.on_fw_version(&mut step, version, choice, now_ms, policy)
            }
            Event::Discovered(node) => self.on_discovered(&mut step, node),
            Event::Status { purpose, code } => {
                self.on_status(&mut step, purpose, code, now_ms, policy)
            }
            Event::NotDelivered {
                purpose,
                reason,
                maybe_executed,
            } => self.on_not_delivered(&mut step, purpose, reason, maybe_executed, now_ms, policy),
            Event::Report { code, alert_type } => {
                self.on_report(&mut step, code, alert_type, now_ms, policy)
            }
            Event::State(code) => self.on_fumo_state(&mut step, code, now_ms, policy),
            Event::Tick => self.on_tick(&mut step, now_ms, policy),
        }
        step
    }

    fn on_session(&mut self, step: &mut Step) {
        match self.state {
            JobState::Pending | JobState::Notified => {
                step.actions.push(Action::Read {
                    purpose: Purpose::ReadFwV,
                    uri: FWV_URI.into(),
                });
                self.go(step, JobState::InSession, "device in session");
            }
            // Confirmation pending from an earlier session: read the version again.
            JobState::Confirming => step.actions.push(Action::Read {
                purpose: Purpose::ReadFwV,
                uri: FWV_URI.into(),
            }),
            _ => {}
        }
    }

    fn on_fw_version(
        &mut self,
        step: &mut Step,
        version: &str,
        choice: Choice,
        now_ms: i64,
        policy: &Policy,
    ) {
        match self.state {
            JobState::InSession => match choice {
                Choice::Incompatible(why) => {
                    self.failure = Some(why.clone());
                    step.actions.push(Action::CancelQueued);
                    self.go(step, JobState::Incompatible, why);
                }
                Choice::AlreadyOnTarget => {
                    self.confirmed_version = Some(version.to_owned());
                    self.go(step, JobState::Succeeded, "already on the target version");
                }
                Choice::NoPackage => self.retry_or_fail(
                    step,
                    format!("no package for {version} yet"),
                    now_ms,
                    policy,
                ),
                Choice::Package { id, kind, .. } => {
                    self.package = Some((id, kind));
                    if self.fumo_node.is_some() {
                        self.deliver(step);
                    } else {
                        step.actions.push(Action::Discover);
                    }
                }
            },
            JobState::Confirming => {
                self.confirmed_version = Some(version.to_owned());
                if version.trim() == self.target_version.trim() {
                    self.failure = None;
                    self.go(step, JobState::Succeeded, format!("device runs {version}"));
                } else {
                    // The report said success, yet the old firmware runs: it fell back.
                    self.fail(step, "not_confirmed");
                }
            }
            _ => {}
        }
    }

    fn on_discovered(&mut self, step: &mut Step, node: Option<String>) {
        if self.state != JobState::InSession || self.fumo_node.is_some() {
            return;
        }
        match node {
            Some(node) => {
                self.fumo_node = Some(node);
                self.deliver(step);
            }
            None => self.fail(step, "no FUMO node found on the device"),
        }
    }

    fn on_status(
        &mut self,
        step: &mut Step,
        purpose: Purpose,
        code: u16,
        now_ms: i64,
        policy: &Policy,
    ) {
        let c = classify_command_status(code);
        match purpose {
            Purpose::Exec if self.state == JobState::Downloading => {
                if c.verdict == Verdict::Success {
                    // 202 is the spec's answer; 200 happens too (brief 5.3): both mean the
                    // report follows.
                    self.due_at_ms = Some(now_ms + policy.report_timeout_ms);
                    self.go(step, JobState::Accepted, format!("Exec answered {code}"));
                } else {
                    self.command_failed(step, "Exec", code, c.verdict, now_ms, policy);
                }
            }
            Purpose::PkgUrl | Purpose::PkgData if c.verdict != Verdict::Success => {
                if matches!(self.state, JobState::Downloading) {
                    let what = if purpose == Purpose::PkgUrl {
                        "Replace PkgURL"
                    } else {
                        "PkgData"
                    };
                    self.command_failed(step, what, code, c.verdict, now_ms, policy);
                }
            }
            Purpose::ReadFwV if c.verdict != Verdict::Success => self.fail(
                step,
                format!("the device cannot read ./DevDetail/FwV ({code})"),
            ),
            _ => {}
        }
    }

    fn command_failed(
        &mut self,
        step: &mut Step,
        what: &str,
        code: u16,
        verdict: Verdict,
        now_ms: i64,
        policy: &Policy,
    ) {
        // Refused outright: the device is not executing anything for this attempt.
        self.exec_sent = false;
        let reason = format!("{what} refused with {code}");
        match verdict {
            Verdict::Permanent => self.fail(step, reason),
            _ => self.retry_or_fail(step, reason, now_ms, policy),
        }
    }

    fn on_not_delivered(
        &mut self,
        step: &mut Step,
        purpose: Purpose,
        reason: &str,
        maybe_executed: bool,
        now_ms: i64,
        policy: &Policy,
    ) {
        match (self.state, purpose) {
            // The Exec went out and the session ended before its Status: the device may be
            // running it. Never resend; wait for the report as if accepted.
            (JobState::Downloading, Purpose::Exec) if maybe_executed => {
                self.due_at_ms = Some(now_ms + policy.report_timeout_ms);
                self.go(
                    step,
                    JobState::Accepted,
                    "Exec sent, no Status; waiting for the report",
                );
            }
            (JobState::Downloading, Purpose::PkgData | Purpose::PkgUrl | Purpose::Exec) => {
                self.exec_sent = false;
                self.retry_or_fail(step, format!("delivery failed: {reason}"), now_ms, policy)
            }
            // A read that did not come back: ask again in the next session.
            (JobState::InSession, Purpose::ReadFwV | Purpose::Discover) => {
                self.go(
                    step,
                    JobState::Pending,
                    format!("read not answered: {reason}"),
                );
            }
            _ => {}
        }
    }

    fn on_report(
        &mut self,
        step: &mut Step,
        code: Option<u32>,
        alert_type: Option<&str>,
        now_ms: i64,
        policy: &Policy,
    ) {
        if !matches!(self.state, JobState::Downloading | JobState::Accepted) {
            return;
        }
        let Some(code) = code else {
            return self.fail(step, "report without a result code");
        };
        self.result_code = Some(code);
        let c = classify(code);
        let download_only = self.stage == Some(Stage::Download)
            || alert_type.is_some_and(|t| t.ends_with(".download"));
        match c.verdict {
            Verdict::Success if download_only && self.mode == Some(Mode::UrlTwoStep) => {
                // First step done: the package is on the device; install it.
                let node = self.fumo_node.clone().unwrap_or_default();
                self.stage = Some(Stage::Update);
                step.actions.push(Action::ExecUpdate {
                    node,
                    correlator: self.correlator(),
                });
                self.go(
                    step,
                    JobState::Downloading,
                    format!("download reported {code}; installing"),
                );
            }
            Verdict::Success => {
                self.due_at_ms = None;
                step.actions.push(Action::Read {
                    purpose: Purpose::ReadFwV,
                    uri: FWV_URI.into(),
                });
                self.go(
                    step,
                    JobState::Confirming,
                    format!("reported {code} ({})", c.meaning),
                );
            }
            Verdict::Transient => {
                self.exec_sent = false;
                self.retry_or_fail(
                    step,
                    format!("reported {code} ({})", c.meaning),
                    now_ms,
                    policy,
                )
            }
            Verdict::Permanent => {
                self.exec_sent = false;
                self.fail(step, format!("reported {code} ({})", c.meaning))
            }
        }
    }

    fn on_fumo_state(&mut self, step: &mut Step, code: u32, now_ms: i64, policy: &Policy) {
        if self.state != JobState::Accepted {
            return;
        }
        match FumoState::from_code(code) {
            Some(s) if s.in_progress() => {
                self.due_at_ms = Some(now_ms + policy.report_timeout_ms);
            }
            Some(FumoState::UpdateSuccessfulHaveData | FumoState::UpdateSuccessfulNoData) => {
                self.due_at_ms = None;
                step.actions.push(Action::Read {
                    purpose: Purpose::ReadFwV,
                    uri: FWV_URI.into(),
                });
                self.go(
                    step,
                    JobState::Confirming,
                    format!("no report, but State is {code}"),
                );
            }
            Some(FumoState::UpdateFailedHaveData | FumoState::UpdateFailedNoData) => {
                self.exec_sent = false;
                self.fail(step, format!("no report; State is {code} (update failed)"))
            }
            // Idle or download failed: the device is not working on it any more.
            _ => {
                self.exec_sent = false;
                self.retry_or_fail(step, format!("no report; State is {code}"), now_ms, policy)
            }
        }
    }

    fn on_tick(&mut self, step: &mut Step, now_ms: i64, policy: &Policy) {
        let due = self.due_at_ms.is_some_and(|d| now_ms >= d);
        match self.state {
            JobState::RetryWait if due => {
                self.attempt += 1;
                self.due_at_ms = None;
                self.package = None;
                self.stage = None;
                // Waiting for the device again; a Package 0 wakes it where a transport exists.
                step.actions.push(Action::Notify);
                self.go(step, JobState::Pending, format!("attempt {}", self.attempt));
            }
            JobState::Accepted if due => {
                // Chase the missing report: wake the device and read the node's State
                // (brief 5.6). The Exec itself is not sent again.
                self.chases += 1;
                self.due_at_ms = Some(now_ms + policy.report_timeout_ms);
                step.actions.push(Action::Notify);
                if let Some(node) = &self.fumo_node {
                    step.actions.push(Action::Read {
                        purpose: Purpose::ReadState,
                        uri: format!("{node}/State"),
                    });
                }
                step.transitions.push(Transition {
                    from: self.state,
                    to: self.state,
                    note: format!("no report yet; device notified again ({})", self.chases),
                });
            }
            _ => {}
        }
    }
}

/// Where the firmware version is read (DevDetail is a standard object, brief 6.2).
pub const FWV_URI: &str = "./DevDetail/FwV";

/// The Correlator of attempt `attempt` of job `id`.
pub fn correlator(id: i64, attempt: u32) -> String {
    format!("upd-{id}-{attempt}")
}

/// Parses a Correlator back into (job id, attempt).
pub fn parse_correlator(s: &str) -> Option<(i64, u32)> {
    let rest = s.trim().strip_prefix("upd-")?;
    let (id, attempt) = rest.split_once('-')?;
    Some((id.parse().ok()?, attempt.parse().ok()?))
}
