//! The planner on example campaigns: which gate names what, soak, advance, the last wave's
//! verdict, operator resumes, packages not built yet, scheduled starts.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::gates::PauseKind;
use super::machine::{CampaignState, Machine, WaveState};
use super::planner::{Candidate, CohortReadiness, Happened, Input, plan};
use super::spec::{Delivery, Membership, Policy, Retries, Schedule, Spec, WaveSize};
use super::tally::{Cohort, MemberState, Tally};
use crate::fumo::JobState;

fn cohort(model: &str, version: &str) -> Cohort {
    Cohort {
        manufacturer: "Acme".into(),
        model: model.into(),
        version: version.into(),
    }
}

fn spec(policy: Policy) -> Spec {
    Spec {
        name: "t".into(),
        targets: vec![],
        selector: Default::default(),
        waves: vec![
            WaveSize::Count(5),
            WaveSize::Percent(20.0),
            WaveSize::Count(1),
        ],
        policy,
        schedule: Schedule::default(),
        retries: Retries {
            max_attempts: 1,
            backoff_secs: 0,
        },
        device_deadline_secs: 3600,
        delivery: Delivery::Url,
        membership: Membership::Static,
    }
}

fn policy() -> Policy {
    Policy {
        advance_success_ratio: 0.9,
        pause_failure_ratio: 0.2,
        min_sample: 5,
        soak_secs: 60,
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 8, 12, 0, 0).unwrap()
}

fn running(sizes: &[u64]) -> Machine {
    let mut m = Machine::new(sizes);
    m.start().unwrap();
    m.state = CampaignState::Running;
    m.started_at_ms = Some(now().timestamp_millis());
    m
}

const SUCCEEDED: MemberState = MemberState::Job(JobState::Succeeded);
const FAILED: MemberState = MemberState::Job(JobState::Failed);
const PENDING: MemberState = MemberState::Job(JobState::Pending);

struct Run<'a> {
    spec: &'a Spec,
    tally: Tally,
    candidates: Vec<Candidate>,
    readiness: BTreeMap<Cohort, CohortReadiness>,
    recent: Vec<DateTime<Utc>>,
    at: DateTime<Utc>,
}

impl<'a> Run<'a> {
    fn new(spec: &'a Spec) -> Self {
        Run {
            spec,
            tally: Tally::default(),
            candidates: vec![],
            readiness: BTreeMap::new(),
            recent: vec![],
            at: now(),
        }
    }

    fn plan(&self, m: &Machine) -> super::Decision {
        plan(
            self.spec,
            m,
            &Input {
                now: self.at,
                tally: &self.tally,
                recent_starts: &self.recent,
                server_budget: 100,
                readiness: &self.readiness,
                candidates: &self.candidates,
                poll: Duration::seconds(1),
            },
        )
    }
}

#[test]
fn a_cohort_over_the_ratio_pauses_and_is_named_before_its_wave() {
    let s = spec(policy());
    let mut r = Run::new(&s);
    let bad = cohort("M1", "1.0");
    r.tally.add(Some(1), bad.clone(), FAILED, 5);
    r.tally.add(Some(1), bad.clone(), SUCCEEDED, 1);
    r.tally.add(Some(1), cohort("M2", "1.0"), SUCCEEDED, 20);
    r.tally
        .add(Some(1), cohort("M2", "1.0"), MemberState::Planned, 20);
    let mut m = running(&[5, 60, 235]);
    m.current_wave = 1;
    m.waves[0].state = WaveState::Done;
    let d = r.plan(&m);
    assert_eq!(d.machine.state, CampaignState::Paused);
    let reason = d.machine.pause_reason.unwrap();
    assert_eq!(reason.kind, PauseKind::CohortFailureRatio);
    assert_eq!(reason.cohort, Some(bad));
    assert_eq!((reason.failed, reason.verdicts), (Some(5), Some(6)));
    assert!(reason.message.contains("M1"), "{}", reason.message);
    assert!(d.start.is_empty());
}

#[test]
fn a_wave_over_the_ratio_names_the_cohort_holding_its_failures() {
    let s = spec(policy());
    let mut r = Run::new(&s);
    r.tally.add(Some(0), cohort("M1", "1.0"), FAILED, 2);
    r.tally.add(Some(0), cohort("M2", "1.0"), SUCCEEDED, 3);
    let d = r.plan(&running(&[5, 60, 235]));
    let reason = d.machine.pause_reason.unwrap();
    assert_eq!(reason.kind, PauseKind::WaveFailureRatio);
    assert_eq!(reason.wave, Some(0));
    assert_eq!(reason.cohort, Some(cohort("M1", "1.0")));
}

#[test]
fn below_min_sample_nothing_trips() {
    let s = spec(policy());
    let mut r = Run::new(&s);
    r.tally.add(Some(0), cohort("M1", "1.0"), FAILED, 4);
    r.tally
        .add(Some(0), cohort("M1", "1.0"), MemberState::Planned, 1);
    let d = r.plan(&running(&[5, 60, 235]));
    assert_eq!(d.machine.state, CampaignState::Running);
}

#[test]
fn a_finished_wave_soaks_then_advances() {
    let s = spec(policy());
    let mut r = Run::new(&s);
    r.tally.add(Some(0), cohort("M1", "1.0"), SUCCEEDED, 5);
    r.tally
        .add(Some(1), cohort("M1", "1.0"), MemberState::Planned, 60);
    let d = r.plan(&running(&[5, 60, 1]));
    assert_eq!(d.machine.waves[0].state, WaveState::Soaking);
    assert_eq!(d.next_due, Some(now() + Duration::seconds(60)));
    assert!(d.happened.contains(&Happened::WaveFinished(0)));
    r.at = now() + Duration::seconds(60);
    let d = r.plan(&d.machine);
    assert_eq!(d.machine.waves[0].state, WaveState::Done);
    assert_eq!(d.machine.current_wave, 1);
}

#[test]
fn a_wave_below_the_advance_ratio_pauses_and_a_resume_goes_past_it() {
    let mut p = policy();
    p.pause_failure_ratio = 1.0;
    p.soak_secs = 0;
    let s = spec(p);
    let mut r = Run::new(&s);
    r.tally.add(Some(0), cohort("M1", "1.0"), SUCCEEDED, 4);
    r.tally.add(Some(0), cohort("M1", "1.0"), FAILED, 1);
    r.tally
        .add(Some(1), cohort("M1", "1.0"), MemberState::Planned, 60);
    let d = r.plan(&running(&[5, 60, 1]));
    assert_eq!(d.machine.state, CampaignState::Paused);
    assert_eq!(
        d.machine.pause_reason.as_ref().unwrap().kind,
        PauseKind::WaveBelowAdvanceRatio
    );
    let mut m = d.machine;
    m.resume(&r.tally, &s.policy).unwrap();
    let d = r.plan(&m);
    assert_eq!(d.machine.current_wave, 1);
    assert_eq!(d.machine.state, CampaignState::Running);
}

#[test]
fn a_resumed_failure_gate_trips_again_only_on_new_failures() {
    let s = spec(policy());
    let mut r = Run::new(&s);
    let c = cohort("M1", "1.0");
    r.tally.add(Some(0), c.clone(), FAILED, 3);
    r.tally.add(Some(0), c.clone(), SUCCEEDED, 2);
    r.tally.add(Some(1), c.clone(), MemberState::Planned, 10);
    let d = r.plan(&running(&[5, 60, 1]));
    assert_eq!(d.machine.state, CampaignState::Paused);
    let mut m = d.machine;
    m.resume(&r.tally, &s.policy).unwrap();
    // The soak and the advance gate hold now (2 of 5): resume past those too.
    let d = r.plan(&m);
    assert_ne!(
        d.machine.pause_reason.as_ref().map(|p| p.kind),
        Some(PauseKind::WaveFailureRatio)
    );
    r.tally.shift(Some(0), &c, SUCCEEDED, FAILED, 1);
    let d = r.plan(&m);
    assert_eq!(d.machine.state, CampaignState::Paused);
}

#[test]
fn the_last_wave_below_the_advance_ratio_fails_the_campaign_and_retry_reopens_it() {
    let mut p = policy();
    p.pause_failure_ratio = 1.0;
    let s = spec(p);
    let mut r = Run::new(&s);
    r.tally.add(Some(0), cohort("M1", "1.0"), SUCCEEDED, 1);
    r.tally.add(Some(0), cohort("M1", "1.0"), FAILED, 1);
    let d = r.plan(&running(&[2]));
    assert_eq!(d.machine.state, CampaignState::Failed);
    assert!(matches!(d.happened.last(), Some(Happened::Failed(_))));
    let mut m = d.machine;
    m.retry_failed().unwrap();
    assert_eq!(m.state, CampaignState::Running);
}

#[test]
fn the_last_wave_passing_succeeds_the_campaign() {
    let s = spec(policy());
    let mut r = Run::new(&s);
    r.tally.add(Some(0), cohort("M1", "1.0"), SUCCEEDED, 3);
    r.tally
        .add(None, cohort("M9", "0"), MemberState::Excluded, 7);
    let d = r.plan(&running(&[3]));
    assert_eq!(d.machine.state, CampaignState::Succeeded);
}

#[test]
fn devices_wait_for_their_cohort_package_and_a_failed_build_pauses() {
    let s = spec(policy());
    let mut r = Run::new(&s);
    let (a, b) = (cohort("M1", "1.0"), cohort("M2", "1.0"));
    r.tally.add(Some(0), a.clone(), MemberState::Planned, 1);
    r.tally.add(Some(0), b.clone(), MemberState::Planned, 1);
    r.candidates = vec![
        Candidate {
            device_id: "a".into(),
            wave: 0,
            cohort: a.clone(),
            timezone: None,
        },
        Candidate {
            device_id: "b".into(),
            wave: 0,
            cohort: b.clone(),
            timezone: None,
        },
    ];
    r.readiness.insert(a.clone(), CohortReadiness::Building);
    r.readiness.insert(b.clone(), CohortReadiness::Ready);
    let d = r.plan(&running(&[2]));
    assert_eq!(
        d.start
            .iter()
            .map(|c| c.device_id.as_str())
            .collect::<Vec<_>>(),
        ["b"]
    );
    r.readiness.insert(
        a.clone(),
        CohortReadiness::Unavailable("the build failed".into()),
    );
    let d = r.plan(&running(&[2]));
    assert!(d.start.is_empty());
    let reason = d.machine.pause_reason.unwrap();
    assert_eq!(reason.kind, PauseKind::BuildFailed);
    assert_eq!(reason.cohort, Some(a));
}

#[test]
fn caps_bound_the_starts_of_one_plan() {
    let mut s = spec(policy());
    s.schedule.max_concurrent = Some(3);
    s.schedule.max_starts_per_minute = Some(10);
    let mut r = Run::new(&s);
    let c = cohort("M1", "1.0");
    r.readiness.insert(c.clone(), CohortReadiness::Ready);
    r.tally.add(Some(0), c.clone(), PENDING, 1);
    r.tally.add(Some(0), c.clone(), MemberState::Planned, 9);
    r.candidates = (0..9)
        .map(|i| Candidate {
            device_id: format!("d{i}"),
            wave: 0,
            cohort: c.clone(),
            timezone: None,
        })
        .collect();
    assert_eq!(r.plan(&running(&[10])).start.len(), 2);
    r.recent = vec![now() - Duration::seconds(30); 9];
    assert_eq!(r.plan(&running(&[10])).start.len(), 1);
}

#[test]
fn a_scheduled_campaign_waits_for_its_start_time() {
    let mut s = spec(policy());
    s.schedule.start_at_ms = Some((now() + Duration::hours(1)).timestamp_millis());
    let r = Run::new(&s);
    let mut m = Machine::new(&[1]);
    m.start().unwrap();
    let d = r.plan(&m);
    assert_eq!(d.machine.state, CampaignState::Scheduled);
    assert_eq!(d.next_due, Some(now() + Duration::hours(1)));
}

#[test]
fn a_paused_campaign_plans_nothing() {
    let s = spec(policy());
    let mut r = Run::new(&s);
    let c = cohort("M1", "1.0");
    r.readiness.insert(c.clone(), CohortReadiness::Ready);
    r.tally.add(Some(0), c.clone(), MemberState::Planned, 1);
    r.candidates = vec![Candidate {
        device_id: "a".into(),
        wave: 0,
        cohort: c,
        timezone: None,
    }];
    let mut m = running(&[1]);
    m.state = CampaignState::Paused;
    let d = r.plan(&m);
    assert!(d.start.is_empty());
    assert_eq!(d.next_due, None);
}
