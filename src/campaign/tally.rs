//! The counts a campaign decides on: members per (wave, cohort, state), kept incrementally by
//! the store, so that planning reads a few hundred numbers whatever the fleet size.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::fumo::JobState;

/// Devices of one model on one source version: the unit the cohort gate watches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cohort {
    pub manufacturer: String,
    pub model: String,
    pub version: String,
}

/// Where a member of a campaign is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MemberState {
    /// Selected, in a wave, not started yet.
    Planned,
    /// Out of the campaign: at creation (no target, already on it, busy elsewhere) or by the
    /// operator. Leaves every ratio's denominator.
    Excluded,
    /// Started: its update job's state.
    Job(JobState),
}

impl MemberState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Planned => "planned",
            Self::Excluded => "excluded",
            Self::Job(s) => s.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "planned" => Some(Self::Planned),
            "excluded" => Some(Self::Excluded),
            other => JobState::parse(other).map(Self::Job),
        }
    }

    /// Started and without a verdict.
    pub fn in_progress(self) -> bool {
        matches!(self, Self::Job(s) if !s.is_final())
    }

    /// A verdict that counts as a success.
    pub fn succeeded(self) -> bool {
        self == Self::Job(JobState::Succeeded)
    }

    /// A verdict that counts as a failure: failed, timed out, or found incompatible in its
    /// session. A cancelled job is no verdict on the firmware and leaves the denominators.
    pub fn failed(self) -> bool {
        matches!(
            self,
            Self::Job(JobState::Failed | JobState::TimedOut | JobState::Incompatible)
        )
    }

    /// Every state, for listing counts.
    pub fn all() -> impl Iterator<Item = MemberState> {
        [Self::Planned, Self::Excluded].into_iter().chain(
            [
                JobState::Pending,
                JobState::Notified,
                JobState::InSession,
                JobState::Downloading,
                JobState::Accepted,
                JobState::Confirming,
                JobState::RetryWait,
                JobState::Succeeded,
                JobState::Failed,
                JobState::TimedOut,
                JobState::Cancelled,
                JobState::Incompatible,
            ]
            .into_iter()
            .map(Self::Job),
        )
    }
}

/// Successes and failures of a scope (a wave, a cohort, the campaign).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verdicts {
    pub succeeded: u64,
    pub failed: u64,
}

impl Verdicts {
    pub fn total(self) -> u64 {
        self.succeeded + self.failed
    }

    pub fn failure_ratio(self) -> f64 {
        if self.total() == 0 {
            0.0
        } else {
            self.failed as f64 / self.total() as f64
        }
    }

    pub fn success_ratio(self) -> f64 {
        if self.total() == 0 {
            1.0
        } else {
            self.succeeded as f64 / self.total() as f64
        }
    }
}

/// Members counted by (wave, cohort, state). Members excluded at creation have no wave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    counts: BTreeMap<(Option<u32>, Cohort, MemberState), u64>,
}

impl Tally {
    pub fn add(&mut self, wave: Option<u32>, cohort: Cohort, state: MemberState, n: u64) {
        if n > 0 {
            *self.counts.entry((wave, cohort, state)).or_default() += n;
        }
    }

    /// Moves `n` members from one state to another (saturating: counts never go negative).
    pub fn shift(
        &mut self,
        wave: Option<u32>,
        cohort: &Cohort,
        from: MemberState,
        to: MemberState,
        n: u64,
    ) {
        if let Some(c) = self.counts.get_mut(&(wave, cohort.clone(), from)) {
            *c = c.saturating_sub(n);
        }
        self.add(wave, cohort.clone(), to, n);
    }

    pub fn iter(&self) -> impl Iterator<Item = (Option<u32>, &Cohort, MemberState, u64)> {
        self.counts
            .iter()
            .map(|((w, c, s), n)| (*w, c, *s, *n))
            .filter(|(_, _, _, n)| *n > 0)
    }

    fn sum(&self, keep: impl Fn(Option<u32>, &Cohort, MemberState) -> bool) -> u64 {
        self.iter()
            .filter(|(w, c, s, _)| keep(*w, c, *s))
            .map(|(_, _, _, n)| n)
            .sum()
    }

    fn verdicts(&self, keep: impl Fn(Option<u32>, &Cohort) -> bool) -> Verdicts {
        Verdicts {
            succeeded: self.sum(|w, c, s| keep(w, c) && s.succeeded()),
            failed: self.sum(|w, c, s| keep(w, c) && s.failed()),
        }
    }

    pub fn total(&self) -> u64 {
        self.sum(|_, _, _| true)
    }

    pub fn in_progress(&self) -> u64 {
        self.sum(|_, _, s| s.in_progress())
    }

    /// Members of a wave in a state.
    pub fn wave_in(&self, wave: u32, state: MemberState) -> u64 {
        self.sum(|w, _, s| w == Some(wave) && s == state)
    }

    pub fn wave_in_progress(&self, wave: u32) -> u64 {
        self.sum(|w, _, s| w == Some(wave) && s.in_progress())
    }

    /// Planned members in waves up to `wave` (earlier waves hold retried devices).
    pub fn planned_up_to(&self, wave: u32) -> u64 {
        self.sum(|w, _, s| w.is_some_and(|w| w <= wave) && s == MemberState::Planned)
    }

    pub fn wave_verdicts(&self, wave: u32) -> Verdicts {
        self.verdicts(|w, _| w == Some(wave))
    }

    /// A cohort's verdicts across every wave.
    pub fn cohort_verdicts(&self, cohort: &Cohort) -> Verdicts {
        self.verdicts(|_, c| c == cohort)
    }

    /// A cohort's failures within one wave.
    pub fn cohort_wave_verdicts(&self, cohort: &Cohort, wave: u32) -> Verdicts {
        self.verdicts(|w, c| w == Some(wave) && c == cohort)
    }

    /// The cohorts that have members in waves.
    pub fn cohorts(&self) -> Vec<Cohort> {
        let mut all: Vec<Cohort> = self
            .iter()
            .filter(|(w, _, _, _)| w.is_some())
            .map(|(_, c, _, _)| c.clone())
            .collect();
        all.sort();
        all.dedup();
        all
    }
}
