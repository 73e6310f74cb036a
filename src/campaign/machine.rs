//! Where a campaign stands: its state, its waves' progress, why it is paused, and which known
//! failures an operator chose to go on past. Operator actions are transitions on it.

use serde::{Deserialize, Serialize};

use super::gates::{Gate, PauseReason};
use super::tally::Tally;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    /// Created, members selected and builds queued; nothing starts until `start`.
    Draft,
    /// Started, waiting for its start time.
    Scheduled,
    Running,
    /// Stopped by an operator or by a policy; `resume` goes on.
    Paused,
    Succeeded,
    /// Its last wave ended below the advance ratio.
    Failed,
    Cancelled,
}

impl CampaignState {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Scheduled => "scheduled",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "draft" => Self::Draft,
            "scheduled" => Self::Scheduled,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = CampaignWaveState)]
pub enum WaveState {
    Pending,
    /// Its devices are being started and reporting.
    Running,
    /// Every member has a verdict; the soak time runs before the advance gate.
    Soaking,
    /// Gated and passed (or the operator went on past the gate).
    Done,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaveProgress {
    /// Members assigned at creation (dynamic members add to it).
    pub size: u64,
    pub state: WaveState,
    pub started_at_ms: Option<i64>,
    /// When its last verdict came (the soak runs from here).
    pub finished_at_ms: Option<i64>,
    pub done_at_ms: Option<i64>,
}

/// A gate an operator resumed past, with the failures it had then: it trips again only on
/// failures beyond these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acknowledged {
    pub gate: Gate,
    pub failed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub state: CampaignState,
    pub current_wave: u32,
    pub waves: Vec<WaveProgress>,
    pub pause_reason: Option<PauseReason>,
    #[serde(default)]
    pub acknowledged: Vec<Acknowledged>,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    /// Dynamic membership: how far the scan for devices that match later has gone (a device's
    /// `updated_at` in milliseconds and its id).
    #[serde(default)]
    pub membership_cursor: Option<(i64, String)>,
}

/// Why an operator action is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {state} campaign cannot be {action}")]
pub struct NotNow {
    pub state: &'static str,
    pub action: &'static str,
}

impl Machine {
    pub fn new(wave_sizes: &[u64]) -> Machine {
        Machine {
            state: CampaignState::Draft,
            current_wave: 0,
            waves: wave_sizes
                .iter()
                .map(|&size| WaveProgress {
                    size,
                    state: WaveState::Pending,
                    started_at_ms: None,
                    finished_at_ms: None,
                    done_at_ms: None,
                })
                .collect(),
            pause_reason: None,
            acknowledged: Vec::new(),
            started_at_ms: None,
            finished_at_ms: None,
            membership_cursor: None,
        }
    }

    fn refuse(&self, action: &'static str) -> NotNow {
        NotNow {
            state: self.state.as_str(),
            action,
        }
    }

    /// A draft starts: `scheduled` (the planner runs it at its start time) or `running`.
    pub fn start(&mut self) -> Result<(), NotNow> {
        if self.state != CampaignState::Draft {
            return Err(self.refuse("started"));
        }
        self.state = CampaignState::Scheduled;
        Ok(())
    }

    pub fn pause(&mut self, reason: PauseReason) -> Result<(), NotNow> {
        if !matches!(
            self.state,
            CampaignState::Running | CampaignState::Scheduled
        ) {
            return Err(self.refuse("paused"));
        }
        self.state = CampaignState::Paused;
        self.pause_reason = Some(reason);
        Ok(())
    }

    /// Goes on from a pause. The gates that stand tripped now are acknowledged with their
    /// failures, so the campaign does not stop again for what the operator has seen; a new
    /// failure in such a scope trips it again. A wave held below its advance ratio advances.
    pub fn resume(&mut self, tally: &Tally, policy: &super::Policy) -> Result<(), NotNow> {
        if self.state != CampaignState::Paused {
            return Err(self.refuse("resumed"));
        }
        for (gate, failed) in super::gates::tripped(tally, policy, self.current_wave) {
            self.acknowledge(gate, failed);
        }
        if let Some(reason) = &self.pause_reason
            && let Some(gate) = reason.gate()
        {
            let failed = gate.failed(tally);
            self.acknowledge(gate, failed);
        }
        self.pause_reason = None;
        self.state = if self.started_at_ms.is_some() {
            CampaignState::Running
        } else {
            CampaignState::Scheduled
        };
        Ok(())
    }

    fn acknowledge(&mut self, gate: Gate, failed: u64) {
        match self.acknowledged.iter_mut().find(|a| a.gate == gate) {
            Some(a) => a.failed = a.failed.max(failed),
            None => self.acknowledged.push(Acknowledged { gate, failed }),
        }
    }

    pub fn cancel(&mut self, now_ms: i64) -> Result<(), NotNow> {
        if self.state.is_final() {
            return Err(self.refuse("cancelled"));
        }
        self.state = CampaignState::Cancelled;
        self.finished_at_ms = Some(now_ms);
        Ok(())
    }

    /// Failed devices are planned again: a failed campaign runs again from its last wave, a
    /// paused or running one goes on as it was.
    pub fn retry_failed(&mut self) -> Result<(), NotNow> {
        match self.state {
            CampaignState::Failed => {
                self.state = CampaignState::Running;
                self.finished_at_ms = None;
                self.pause_reason = None;
                self.acknowledged.clear();
                if let Some(w) = self.waves.get_mut(self.current_wave as usize) {
                    w.state = WaveState::Running;
                    w.finished_at_ms = None;
                    w.done_at_ms = None;
                }
                Ok(())
            }
            CampaignState::Running | CampaignState::Paused | CampaignState::Scheduled => {
                self.acknowledged.clear();
                Ok(())
            }
            _ => Err(self.refuse("retried")),
        }
    }

    /// Whether an operator may change exclusions and policies now.
    pub fn editable(&self) -> bool {
        matches!(self.state, CampaignState::Draft | CampaignState::Paused)
    }
}
