//! The policy gates: a wave or a cohort whose failure ratio exceeds the pause ratio (with a
//! minimum sample) stops the campaign at once; a finished wave advances only at the success
//! ratio. A pause reason names the scope and its figures, for people and for machines.

use serde::{Deserialize, Serialize};

use super::Policy;
use super::tally::{Cohort, Tally, Verdicts};

/// A scope a gate watches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "scope")]
pub enum Gate {
    /// The failure ratio of one wave.
    Wave { wave: u32 },
    /// The failure ratio of one cohort across the campaign.
    Cohort { cohort: Cohort },
    /// A finished wave's success ratio against the advance ratio.
    Advance { wave: u32 },
}

impl Gate {
    pub fn verdicts(&self, tally: &Tally) -> Verdicts {
        match self {
            Self::Wave { wave } | Self::Advance { wave } => tally.wave_verdicts(*wave),
            Self::Cohort { cohort } => tally.cohort_verdicts(cohort),
        }
    }

    pub fn failed(&self, tally: &Tally) -> u64 {
        self.verdicts(tally).failed
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PauseKind {
    /// An operator paused it.
    Operator,
    /// A cohort's failure ratio exceeded the policy's.
    CohortFailureRatio,
    /// A wave's failure ratio exceeded the policy's.
    WaveFailureRatio,
    /// A finished wave's success ratio stayed below the advance ratio.
    WaveBelowAdvanceRatio,
    /// A cohort's package could not be built and there is no full package to fall back to.
    BuildFailed,
}

/// Why a campaign stopped: machine-readable figures and a sentence for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PauseReason {
    pub kind: PauseKind,
    pub message: String,
    /// The operator (token name) who paused it.
    pub by: Option<String>,
    pub wave: Option<u32>,
    /// The cohort at fault: the one that tripped, or, for a wave, the one holding most of
    /// its failures.
    pub cohort: Option<Cohort>,
    pub failed: Option<u64>,
    pub verdicts: Option<u64>,
    pub ratio: Option<f64>,
    pub threshold: Option<f64>,
    pub at_ms: i64,
}

impl PauseReason {
    pub fn operator(by: &str, now_ms: i64) -> PauseReason {
        PauseReason {
            kind: PauseKind::Operator,
            message: format!("paused by {by}"),
            by: Some(by.to_owned()),
            wave: None,
            cohort: None,
            failed: None,
            verdicts: None,
            ratio: None,
            threshold: None,
            at_ms: now_ms,
        }
    }

    pub fn build_failed(cohort: &Cohort, why: &str, now_ms: i64) -> PauseReason {
        PauseReason {
            kind: PauseKind::BuildFailed,
            message: format!(
                "no package for {} {} on {}: {why}",
                cohort.manufacturer, cohort.model, cohort.version
            ),
            by: None,
            wave: None,
            cohort: Some(cohort.clone()),
            failed: None,
            verdicts: None,
            ratio: None,
            threshold: None,
            at_ms: now_ms,
        }
    }

    /// The gate this reason stands for, if a policy gate.
    pub fn gate(&self) -> Option<Gate> {
        match self.kind {
            PauseKind::CohortFailureRatio => {
                self.cohort.clone().map(|cohort| Gate::Cohort { cohort })
            }
            PauseKind::WaveFailureRatio => self.wave.map(|wave| Gate::Wave { wave }),
            PauseKind::WaveBelowAdvanceRatio => self.wave.map(|wave| Gate::Advance { wave }),
            PauseKind::Operator | PauseKind::BuildFailed => None,
        }
    }
}

fn pct(r: f64) -> String {
    format!("{:.0}%", r * 100.0)
}

fn over(v: Verdicts, policy: &Policy) -> bool {
    v.total() >= policy.min_sample && v.failure_ratio() > policy.pause_failure_ratio
}

/// Every failure gate over its threshold now, with its failures (acknowledged or not).
pub fn tripped(tally: &Tally, policy: &Policy, current_wave: u32) -> Vec<(Gate, u64)> {
    let mut gates = Vec::new();
    for cohort in tally.cohorts() {
        let v = tally.cohort_verdicts(&cohort);
        if over(v, policy) {
            gates.push((Gate::Cohort { cohort }, v.failed));
        }
    }
    for wave in 0..=current_wave {
        let v = tally.wave_verdicts(wave);
        if over(v, policy) {
            gates.push((Gate::Wave { wave }, v.failed));
        }
    }
    gates
}

/// The failure gate that stops the campaign now, if any: a cohort before a wave (the more
/// specific cause), the worst ratio first; a gate acknowledged by an operator trips only on
/// failures beyond those it had.
pub fn failure_gate(
    tally: &Tally,
    policy: &Policy,
    current_wave: u32,
    acknowledged: impl Fn(&Gate) -> Option<u64>,
    now_ms: i64,
) -> Option<PauseReason> {
    let mut live: Vec<(Gate, Verdicts)> = tripped(tally, policy, current_wave)
        .into_iter()
        .filter(|(gate, failed)| acknowledged(gate).is_none_or(|seen| *failed > seen))
        .map(|(gate, _)| {
            let v = gate.verdicts(tally);
            (gate, v)
        })
        .collect();
    // Cohorts first, then the worst ratio.
    live.sort_by(|(a, va), (b, vb)| {
        let rank = |g: &Gate| matches!(g, Gate::Wave { .. }) as u8;
        rank(a)
            .cmp(&rank(b))
            .then(vb.failure_ratio().total_cmp(&va.failure_ratio()))
    });
    let (gate, v) = live.into_iter().next()?;
    let figures = format!(
        "{} of {} devices with a verdict failed ({} > {})",
        v.failed,
        v.total(),
        pct(v.failure_ratio()),
        pct(policy.pause_failure_ratio)
    );
    let mut reason = PauseReason {
        kind: PauseKind::WaveFailureRatio,
        message: String::new(),
        by: None,
        wave: None,
        cohort: None,
        failed: Some(v.failed),
        verdicts: Some(v.total()),
        ratio: Some(v.failure_ratio()),
        threshold: Some(policy.pause_failure_ratio),
        at_ms: now_ms,
    };
    match gate {
        Gate::Cohort { cohort } => {
            reason.kind = PauseKind::CohortFailureRatio;
            reason.message = format!(
                "cohort {} {} on {}: {figures}",
                cohort.manufacturer, cohort.model, cohort.version
            );
            reason.wave = Some(current_wave);
            reason.cohort = Some(cohort);
        }
        Gate::Wave { wave } => {
            reason.wave = Some(wave);
            reason.message = format!("wave {wave}: {figures}");
            // Name the cohort that holds most of the wave's failures, when one does.
            if let Some((cohort, failed)) = tally
                .cohorts()
                .into_iter()
                .map(|c| {
                    let f = tally.cohort_wave_verdicts(&c, wave).failed;
                    (c, f)
                })
                .max_by_key(|(_, f)| *f)
                && failed * 2 > v.failed
            {
                reason.message.push_str(&format!(
                    "; {failed} of the {} failures are {} {} on {}",
                    v.failed, cohort.manufacturer, cohort.model, cohort.version
                ));
                reason.cohort = Some(cohort);
            }
        }
        Gate::Advance { .. } => unreachable!("tripped() returns failure gates only"),
    }
    Some(reason)
}

/// A finished wave's advance gate: `None` when it passes, else the reason it holds.
pub fn advance_gate(
    tally: &Tally,
    policy: &Policy,
    wave: u32,
    acknowledged: bool,
    now_ms: i64,
) -> Option<PauseReason> {
    let v = tally.wave_verdicts(wave);
    if acknowledged || v.success_ratio() >= policy.advance_success_ratio {
        return None;
    }
    Some(PauseReason {
        kind: PauseKind::WaveBelowAdvanceRatio,
        message: format!(
            "wave {wave} finished with {} of {} devices updated ({} < {})",
            v.succeeded,
            v.total(),
            pct(v.success_ratio()),
            pct(policy.advance_success_ratio)
        ),
        by: None,
        wave: Some(wave),
        cohort: None,
        failed: Some(v.failed),
        verdicts: Some(v.total()),
        ratio: Some(v.success_ratio()),
        threshold: Some(policy.advance_success_ratio),
        at_ms: now_ms,
    })
}
