//! The planner: the campaign's spec and state, its counts, the time and a bounded batch of
//! candidate devices in; which devices to start, how the waves and the campaign move, and when
//! to look again out. It never reads a clock or a database: the scheduler brings it all.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::gates::{self, Gate, PauseReason};
use super::machine::{CampaignState, Machine, WaveState};
use super::spec::Spec;
use super::tally::{Cohort, MemberState, Tally};
use super::window;

/// A planned member the scheduler may start (members of waves up to the current one, in rank
/// order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub device_id: String,
    pub wave: u32,
    pub cohort: Cohort,
    /// The device's IANA time zone, if it has one.
    pub timezone: Option<String>,
}

/// Whether the package a cohort needs exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CohortReadiness {
    Ready,
    /// Its builds are queued or running: its devices wait.
    Building,
    /// No package can be had (the reason in words).
    Unavailable(String),
}

pub struct Input<'a> {
    pub now: DateTime<Utc>,
    pub tally: &'a Tally,
    /// This campaign's starts in the trailing minute, oldest first.
    pub recent_starts: &'a [DateTime<Utc>],
    /// Starts the server-wide session cap allows now, across every campaign.
    pub server_budget: u32,
    pub readiness: &'a BTreeMap<Cohort, CohortReadiness>,
    pub candidates: &'a [Candidate],
    /// How soon to look again while devices are in flight.
    pub poll: Duration,
}

/// Something that happened, for the campaign's log (and, later, its event stream).
#[derive(Debug, Clone, PartialEq)]
pub enum Happened {
    Started,
    WaveStarted(u32),
    WaveFinished(u32),
    Paused(PauseReason),
    Succeeded,
    Failed(PauseReason),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub machine: Machine,
    pub start: Vec<Candidate>,
    /// When to plan again; `None`: not until an operator acts.
    pub next_due: Option<DateTime<Utc>>,
    pub happened: Vec<Happened>,
}

pub const MINUTE: i64 = 60_000;

/// Plans one step of a campaign.
pub fn plan(spec: &Spec, machine: &Machine, input: &Input<'_>) -> Decision {
    let now = input.now;
    let now_ms = now.timestamp_millis();
    let mut d = Decision {
        machine: machine.clone(),
        start: Vec::new(),
        next_due: None,
        happened: Vec::new(),
    };
    let m = &mut d.machine;
    match m.state {
        CampaignState::Scheduled => {
            if let Some(at) = spec.schedule.start_at_ms
                && at > now_ms
            {
                d.next_due = DateTime::from_timestamp_millis(at);
                return d;
            }
            m.state = CampaignState::Running;
            m.started_at_ms = Some(now_ms);
            d.happened.push(Happened::Started);
        }
        CampaignState::Running => {}
        _ => return d,
    }
    let tally = input.tally;
    let policy = &spec.policy;

    // The current wave is under way.
    let k = m.current_wave;
    if let Some(w) = m.waves.get_mut(k as usize)
        && w.state == WaveState::Pending
    {
        w.state = WaveState::Running;
        w.started_at_ms = Some(now_ms);
        d.happened.push(Happened::WaveStarted(k));
    }

    // Failure gates stop everything at once.
    let acks = m.acknowledged.clone();
    let acked = |g: &Gate| acks.iter().find(|a| &a.gate == g).map(|a| a.failed);
    if let Some(reason) = gates::failure_gate(tally, policy, k, acked, now_ms) {
        m.state = CampaignState::Paused;
        m.pause_reason = Some(reason.clone());
        d.happened.push(Happened::Paused(reason));
        return d;
    }

    // A wave whose every member has a verdict soaks, then passes its advance gate.
    let wave_complete =
        tally.wave_in(k, MemberState::Planned) == 0 && tally.wave_in_progress(k) == 0;
    if wave_complete {
        let last = k as usize + 1 >= m.waves.len();
        let w = &mut m.waves[k as usize];
        if w.finished_at_ms.is_none() {
            w.finished_at_ms = Some(now_ms);
            d.happened.push(Happened::WaveFinished(k));
        }
        let soak_until = w.finished_at_ms.unwrap_or(now_ms) + spec.policy.soak_secs as i64 * 1000;
        if !last && now_ms < soak_until {
            w.state = WaveState::Soaking;
            d.next_due = DateTime::from_timestamp_millis(soak_until);
            return d;
        }
        let acked = acks.iter().any(|a| a.gate == Gate::Advance { wave: k });
        match gates::advance_gate(tally, policy, k, acked, now_ms) {
            None => {
                w.state = WaveState::Done;
                w.done_at_ms = Some(now_ms);
                if last {
                    // Retried members of earlier waves may still be on their way.
                    if tally.planned_up_to(k) == 0 && tally.in_progress() == 0 {
                        m.state = CampaignState::Succeeded;
                        m.finished_at_ms = Some(now_ms);
                        d.happened.push(Happened::Succeeded);
                        return d;
                    }
                } else {
                    m.current_wave = k + 1;
                    // The next wave's candidates are fetched for the next plan, at once.
                    d.next_due = Some(now);
                    return d;
                }
            }
            Some(reason) => {
                if last {
                    m.state = CampaignState::Failed;
                    m.finished_at_ms = Some(now_ms);
                    m.pause_reason = Some(reason.clone());
                    d.happened.push(Happened::Failed(reason));
                } else {
                    w.state = WaveState::Soaking;
                    m.state = CampaignState::Paused;
                    m.pause_reason = Some(reason.clone());
                    d.happened.push(Happened::Paused(reason));
                }
                return d;
            }
        }
    }

    // Starts, within every cap.
    let schedule = &spec.schedule;
    let window_start = now - Duration::milliseconds(MINUTE);
    let recent: Vec<DateTime<Utc>> = input
        .recent_starts
        .iter()
        .copied()
        .filter(|t| *t > window_start)
        .collect();
    let by_rate = schedule
        .max_starts_per_minute
        .map_or(u64::MAX, |r| (r as u64).saturating_sub(recent.len() as u64));
    let by_concurrency = schedule
        .max_concurrent
        .map_or(u64::MAX, |c| (c as u64).saturating_sub(tally.in_progress()));
    let budget = by_rate.min(by_concurrency).min(input.server_budget as u64);
    let mut next_window: Option<DateTime<Utc>> = None;
    let mut waiting = false;
    for c in input.candidates {
        if d.start.len() as u64 >= budget {
            break;
        }
        if c.wave > m.current_wave {
            continue;
        }
        match input.readiness.get(&c.cohort) {
            Some(CohortReadiness::Ready) => {}
            Some(CohortReadiness::Unavailable(why)) => {
                let reason = PauseReason::build_failed(&c.cohort, why, now_ms);
                m.state = CampaignState::Paused;
                m.pause_reason = Some(reason.clone());
                d.happened.push(Happened::Paused(reason));
                d.start.clear();
                d.next_due = None;
                return d;
            }
            Some(CohortReadiness::Building) | None => {
                waiting = true;
                continue;
            }
        }
        let tz = window::zone(c.timezone.as_deref(), schedule.timezone.as_deref());
        if !window::is_open(&schedule.windows, tz, now) {
            if let Some(at) = window::next_open(&schedule.windows, tz, now) {
                next_window = Some(next_window.map_or(at, |n| n.min(at)));
            }
            continue;
        }
        d.start.push(c.clone());
    }

    // When to look again: while devices are in flight or can start, at the next poll; when
    // every remaining candidate waits for its maintenance window, when the first one opens.
    let mut due = now + input.poll;
    if d.start.is_empty()
        && !waiting
        && tally.in_progress() == 0
        && budget > 0
        && let Some(at) = next_window
    {
        due = due.max(at);
    }
    d.next_due = Some(due);
    d
}
