//! Property tests of the planner, over whole simulated campaigns: a fleet of members in waves
//! and cohorts, time moving in random steps, devices reporting random verdicts, an operator
//! resuming now and then. After every plan the invariants are checked on what it decided.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc, Weekday};
use proptest::prelude::*;

use super::machine::{CampaignState, Machine, WaveState};
use super::planner::{Candidate, CohortReadiness, Input, MINUTE, plan};
use super::spec::{Delivery, Membership, Policy, Retries, Schedule, Spec, WaveSize, wave_sizes};
use super::tally::{Cohort, MemberState, Tally};
use super::window::{self, Window};
use crate::fumo::JobState;

const ZONES: [&str; 3] = ["Europe/Paris", "America/New_York", "Asia/Tokyo"];

#[derive(Debug, Clone)]
struct Member {
    id: String,
    wave: u32,
    cohort: Cohort,
    zone: Option<String>,
    state: MemberState,
    fail_odds: u8,
}

#[derive(Debug, Clone)]
struct Scenario {
    devices: usize,
    waves: Vec<WaveSize>,
    policy: Policy,
    max_concurrent: Option<u32>,
    max_per_minute: Option<u32>,
    windows: Vec<Window>,
    cohort_fail_odds: Vec<u8>,
    seed: u64,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        20usize..160,
        prop::collection::vec(
            prop_oneof![
                (1u64..20).prop_map(WaveSize::Count),
                (1u32..60).prop_map(|p| WaveSize::Percent(p as f64))
            ],
            1..4,
        ),
        (0u32..=100, 0u32..=100, 1u64..10, 0u64..300),
        prop::option::of(1u32..25),
        prop::option::of(1u32..40),
        prop::option::of((0u32..24, 1u32..10)),
        prop::collection::vec(0u8..60, 3),
        any::<u64>(),
    )
        .prop_map(
            |(devices, waves, (adv, fail, min_sample, soak), cap, rate, win, odds, seed)| {
                Scenario {
                    devices,
                    waves,
                    policy: Policy {
                        advance_success_ratio: adv as f64 / 100.0,
                        pause_failure_ratio: fail as f64 / 100.0,
                        min_sample,
                        soak_secs: soak,
                    },
                    max_concurrent: cap,
                    max_per_minute: rate,
                    windows: win
                        .map(|(h, len)| {
                            vec![Window {
                                days: vec![],
                                start: NaiveTime::from_hms_opt(h, 0, 0).unwrap(),
                                end: NaiveTime::from_hms_opt((h + len) % 24, 0, 0).unwrap(),
                            }]
                        })
                        .unwrap_or_default(),
                    cohort_fail_odds: odds,
                    seed,
                }
            },
        )
}

/// A small deterministic generator, so that a failing case replays exactly.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % sides.max(1)
    }
}

fn spec_of(s: &Scenario) -> Spec {
    Spec {
        name: "prop".into(),
        targets: vec![],
        selector: Default::default(),
        waves: s.waves.clone(),
        policy: s.policy,
        schedule: Schedule {
            start_at_ms: None,
            windows: s.windows.clone(),
            timezone: None,
            max_starts_per_minute: s.max_per_minute,
            max_concurrent: s.max_concurrent,
        },
        retries: Retries {
            max_attempts: 1,
            backoff_secs: 0,
        },
        device_deadline_secs: 3600,
        delivery: Delivery::Url,
        membership: Membership::Static,
    }
}

fn tally_of(members: &[Member]) -> Tally {
    let mut t = Tally::default();
    for m in members {
        t.add(Some(m.wave), m.cohort.clone(), m.state, 1);
    }
    t
}

fn run(s: Scenario) -> Result<(), TestCaseError> {
    let spec = spec_of(&s);
    let mut dice = Dice(s.seed);
    let sizes = wave_sizes(&s.waves, s.devices as u64);
    let cohorts: Vec<Cohort> = (0..3)
        .map(|i| Cohort {
            manufacturer: "Acme".into(),
            model: format!("M{}", i % 2),
            version: format!("1.{}", i / 2),
        })
        .collect();
    let mut members = Vec::new();
    let mut wave = 0u32;
    let mut left_in_wave = sizes[0];
    for i in 0..s.devices {
        while left_in_wave == 0 {
            wave += 1;
            left_in_wave = sizes[wave as usize];
        }
        left_in_wave -= 1;
        let c = dice.roll(3) as usize;
        members.push(Member {
            id: format!("d{i}"),
            wave,
            cohort: cohorts[c].clone(),
            zone: (dice.roll(4) < 3).then(|| ZONES[dice.roll(3) as usize].to_owned()),
            state: MemberState::Planned,
            fail_odds: s.cohort_fail_odds[c],
        });
    }
    let readiness: BTreeMap<Cohort, CohortReadiness> = cohorts
        .iter()
        .map(|c| (c.clone(), CohortReadiness::Ready))
        .collect();
    let mut machine = Machine::new(&sizes);
    machine.start().unwrap();
    let mut now: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0).unwrap();
    let mut starts: Vec<DateTime<Utc>> = Vec::new();
    for _ in 0..400 {
        let tally = tally_of(&members);
        let mut candidates: Vec<Candidate> = members
            .iter()
            .filter(|m| m.state == MemberState::Planned && m.wave <= machine.current_wave)
            .take(32)
            .map(|m| Candidate {
                device_id: m.id.clone(),
                wave: m.wave,
                cohort: m.cohort.clone(),
                timezone: m.zone.clone(),
            })
            .collect();
        // Now and then a stale batch: candidates of a later wave must still never start.
        if dice.roll(10) == 0
            && let Some(m) = members
                .iter()
                .find(|m| m.wave > machine.current_wave && m.state == MemberState::Planned)
        {
            candidates.push(Candidate {
                device_id: m.id.clone(),
                wave: m.wave,
                cohort: m.cohort.clone(),
                timezone: m.zone.clone(),
            });
        }
        let recent: Vec<DateTime<Utc>> = starts
            .iter()
            .copied()
            .filter(|t| *t > now - Duration::milliseconds(MINUTE))
            .collect();
        let before = machine.clone();
        let d = plan(
            &spec,
            &machine,
            &Input {
                now,
                tally: &tally,
                recent_starts: &recent,
                server_budget: 1000,
                readiness: &readiness,
                candidates: &candidates,
                poll: Duration::seconds(1),
            },
        );
        // A campaign that is not running starts nothing.
        if !matches!(
            before.state,
            CampaignState::Running | CampaignState::Scheduled
        ) || d.machine.state != CampaignState::Running
        {
            prop_assert!(
                d.start.is_empty(),
                "a {:?} campaign started devices",
                d.machine.state
            );
        }
        // Caps.
        if let Some(cap) = s.max_concurrent {
            prop_assert!(tally.in_progress() + d.start.len() as u64 <= cap as u64);
        }
        if let Some(rate) = s.max_per_minute {
            prop_assert!(recent.len() + d.start.len() <= rate as usize);
        }
        for c in &d.start {
            // Never a device of a later wave before every earlier wave is done and gated.
            for w in 0..c.wave {
                prop_assert_eq!(d.machine.waves[w as usize].state, WaveState::Done);
            }
            prop_assert!(c.wave <= d.machine.current_wave);
            // Never outside the device's window.
            let tz = window::zone(c.timezone.as_deref(), None);
            prop_assert!(window::is_open(&s.windows, tz, now));
            let m = members.iter_mut().find(|m| m.id == c.device_id).unwrap();
            prop_assert_eq!(m.state, MemberState::Planned, "started twice");
            m.state = MemberState::Job(JobState::Pending);
            starts.push(now);
        }
        if d.machine.state.is_final() {
            break;
        }
        machine = d.machine;
        // Time passes; some devices in flight report.
        now += Duration::seconds(1 + dice.roll(90) as i64);
        for m in members.iter_mut().filter(|m| m.state.in_progress()) {
            if dice.roll(3) == 0 {
                m.state = if dice.roll(100) < m.fail_odds as u64 {
                    MemberState::Job(JobState::Failed)
                } else {
                    MemberState::Job(JobState::Succeeded)
                };
            }
        }
        // The operator goes on after a pause, now and then.
        if machine.state == CampaignState::Paused && dice.roll(3) == 0 {
            let tally = tally_of(&members);
            machine.resume(&tally, &spec.policy).unwrap();
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn the_planner_keeps_caps_windows_and_wave_order(s in scenario()) {
        run(s)?;
    }
}

#[test]
fn windows_in_three_zones_are_kept_on_a_fixed_day() {
    // A Wednesday window 02:00-03:00 local: each zone opens at its own UTC hour.
    let w = [Window {
        days: vec![Weekday::Wed],
        start: NaiveTime::from_hms_opt(2, 0, 0).unwrap(),
        end: NaiveTime::from_hms_opt(3, 0, 0).unwrap(),
    }];
    let opens: Vec<DateTime<Utc>> = ZONES
        .iter()
        .map(|z| {
            window::next_open(
                &w,
                z.parse().unwrap(),
                Utc.with_ymd_and_hms(2026, 12, 8, 0, 0, 0).unwrap(),
            )
            .unwrap()
        })
        .collect();
    assert_eq!(
        opens[0],
        Utc.with_ymd_and_hms(2026, 12, 9, 1, 0, 0).unwrap()
    );
    assert_eq!(
        opens[1],
        Utc.with_ymd_and_hms(2026, 12, 9, 7, 0, 0).unwrap()
    );
    assert_eq!(
        opens[2],
        Utc.with_ymd_and_hms(2026, 12, 8, 17, 0, 0).unwrap()
    );
}
