//! The update-job state machine, one path at a time.

use super::*;

const POLICY: Policy = Policy {
    report_timeout_ms: 60_000,
    retry_base_ms: 10_000,
    retry_cap_ms: 40_000,
};

fn job() -> Job {
    Job {
        id: 7,
        state: JobState::Pending,
        attempt: 1,
        max_attempts: 3,
        target_version: "2.0".into(),
        mode: Some(Mode::Url),
        stage: None,
        fumo_node: Some("./FUMO/fw1".into()),
        package: None,
        result_code: None,
        failure: None,
        confirmed_version: None,
        due_at_ms: None,
        deadline_ms: None,
        chases: 0,
        exec_sent: false,
        retry_base_ms: None,
    }
}

fn delta() -> Choice {
    Choice::Package {
        id: 11,
        kind: PackageKind::Delta,
        size: 1000,
    }
}

/// Pending → in session → package sent, the way every happy path starts.
fn delivered() -> Job {
    let mut j = job();
    let s = j.on(Event::SessionOpened, 0, &POLICY);
    assert!(matches!(
        &s.actions[..],
        [Action::Read {
            purpose: Purpose::ReadFwV,
            ..
        }]
    ));
    let s = j.on(
        Event::FwV {
            version: "1.0",
            choice: delta(),
        },
        1,
        &POLICY,
    );
    assert_eq!(j.state, JobState::Downloading);
    assert!(
        matches!(&s.actions[..], [Action::Deliver { node, mode: Mode::Url, package_id: 11, correlator }]
        if node == "./FUMO/fw1" && correlator == "upd-7-1")
    );
    j
}

#[test]
fn success_is_declared_only_when_the_next_session_shows_the_target_version() {
    let mut j = delivered();
    j.on(
        Event::Status {
            purpose: Purpose::Exec,
            code: 202,
        },
        2,
        &POLICY,
    );
    assert_eq!(j.state, JobState::Accepted);
    let s = j.on(
        Event::Report {
            code: Some(200),
            alert_type: None,
        },
        3,
        &POLICY,
    );
    assert_eq!(j.state, JobState::Confirming);
    assert!(matches!(
        &s.actions[..],
        [Action::Read {
            purpose: Purpose::ReadFwV,
            ..
        }]
    ));
    j.on(
        Event::FwV {
            version: "2.0",
            choice: Choice::AlreadyOnTarget,
        },
        4,
        &POLICY,
    );
    assert_eq!(j.state, JobState::Succeeded);
    assert_eq!(j.confirmed_version.as_deref(), Some("2.0"));
}

#[test]
fn a_success_report_followed_by_the_old_version_is_not_confirmed() {
    let mut j = delivered();
    j.on(
        Event::Status {
            purpose: Purpose::Exec,
            code: 202,
        },
        2,
        &POLICY,
    );
    j.on(
        Event::Report {
            code: Some(200),
            alert_type: None,
        },
        3,
        &POLICY,
    );
    j.on(
        Event::FwV {
            version: "1.0",
            choice: delta(),
        },
        4,
        &POLICY,
    );
    assert_eq!(j.state, JobState::Failed);
    assert_eq!(j.failure.as_deref(), Some("not_confirmed"));
}

#[test]
fn a_transient_code_is_retried_with_capped_backoff_and_a_permanent_one_is_not() {
    let mut j = delivered();
    j.on(
        Event::Status {
            purpose: Purpose::Exec,
            code: 202,
        },
        0,
        &POLICY,
    );
    j.on(
        Event::Report {
            code: Some(402),
            alert_type: None,
        },
        1_000,
        &POLICY,
    );
    assert_eq!(j.state, JobState::RetryWait);
    assert_eq!(j.due_at_ms, Some(11_000));
    assert!(!j.exec_sent);
    // Not due yet: nothing.
    assert!(j.on(Event::Tick, 5_000, &POLICY).actions.is_empty());
    let s = j.on(Event::Tick, 11_000, &POLICY);
    assert_eq!(s.actions, vec![Action::Notify]);
    assert_eq!((j.state, j.attempt), (JobState::Pending, 2));
    assert_eq!(j.correlator(), "upd-7-2");

    let mut p = delivered();
    p.on(
        Event::Status {
            purpose: Purpose::Exec,
            code: 202,
        },
        0,
        &POLICY,
    );
    p.on(
        Event::Report {
            code: Some(404),
            alert_type: None,
        },
        1,
        &POLICY,
    );
    assert_eq!(p.state, JobState::Failed);
    assert!(p.failure.as_deref().unwrap().contains("404"));
}

#[test]
fn attempts_run_out() {
    let mut j = delivered();
    j.attempt = 3;
    j.on(
        Event::Report {
            code: Some(503),
            alert_type: None,
        },
        1,
        &POLICY,
    );
    assert_eq!(j.state, JobState::Failed);
    assert!(j.failure.as_deref().unwrap().contains("no attempts left"));
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    for (attempt, expected) in [(1, 10_000), (2, 20_000), (3, 40_000), (4, 40_000)] {
        let mut j = delivered();
        j.attempt = attempt;
        j.max_attempts = 10;
        j.on(
            Event::Report {
                code: Some(503),
                alert_type: None,
            },
            0,
            &POLICY,
        );
        assert_eq!(j.due_at_ms, Some(expected), "attempt {attempt}");
    }
}

#[test]
fn a_missing_report_is_chased_without_resending_the_exec_then_times_out() {
    let mut j = delivered();
    j.deadline_ms = Some(500_000);
    j.on(
        Event::Status {
            purpose: Purpose::Exec,
            code: 202,
        },
        0,
        &POLICY,
    );
    let s = j.on(Event::Tick, 60_000, &POLICY);
    assert_eq!(
        s.actions,
        vec![
            Action::Notify,
            Action::Read {
                purpose: Purpose::ReadState,
                uri: "./FUMO/fw1/State".into()
            }
        ]
    );
    assert_eq!((j.state, j.chases), (JobState::Accepted, 1));
    assert!(
        !s.actions
            .iter()
            .any(|a| matches!(a, Action::Deliver { .. }))
    );
    // The device says it is still downloading: keep waiting.
    j.on(Event::State(30), 70_000, &POLICY);
    assert_eq!(j.state, JobState::Accepted);
    assert_eq!(j.due_at_ms, Some(130_000));
    let s = j.on(Event::Tick, 500_000, &POLICY);
    assert_eq!(j.state, JobState::TimedOut);
    assert_eq!(s.actions, vec![Action::CancelQueued]);
}

#[test]
fn state_after_a_lost_report_decides() {
    let mut ok = delivered();
    ok.on(
        Event::Status {
            purpose: Purpose::Exec,
            code: 202,
        },
        0,
        &POLICY,
    );
    ok.on(Event::State(100), 1, &POLICY);
    assert_eq!(ok.state, JobState::Confirming);
    let mut failed = delivered();
    failed.on(
        Event::Status {
            purpose: Purpose::Exec,
            code: 202,
        },
        0,
        &POLICY,
    );
    failed.on(Event::State(80), 1, &POLICY);
    assert_eq!(failed.state, JobState::Failed);
    let mut idle = delivered();
    idle.on(
        Event::Status {
            purpose: Purpose::Exec,
            code: 202,
        },
        0,
        &POLICY,
    );
    idle.on(Event::State(10), 1, &POLICY);
    assert_eq!(idle.state, JobState::RetryWait);
}

#[test]
fn an_exec_sent_without_a_status_is_never_resent() {
    let mut j = delivered();
    let s = j.on(
        Event::NotDelivered {
            purpose: Purpose::Exec,
            reason: "session ended",
            maybe_executed: true,
        },
        0,
        &POLICY,
    );
    assert_eq!(j.state, JobState::Accepted);
    assert!(s.actions.is_empty());
    assert!(
        j.cancel().is_none(),
        "the device may be installing: no cancel"
    );
}

#[test]
fn an_incompatible_device_gets_nothing_and_the_target_version_is_success() {
    let mut j = job();
    j.on(Event::SessionOpened, 0, &POLICY);
    let s = j.on(
        Event::FwV {
            version: "1.0",
            choice: Choice::Incompatible("model".into()),
        },
        1,
        &POLICY,
    );
    assert_eq!(j.state, JobState::Incompatible);
    assert_eq!(s.actions, vec![Action::CancelQueued]);
    let mut on = job();
    on.on(Event::SessionOpened, 0, &POLICY);
    on.on(
        Event::FwV {
            version: "2.0",
            choice: Choice::AlreadyOnTarget,
        },
        1,
        &POLICY,
    );
    assert_eq!(on.state, JobState::Succeeded);
}

#[test]
fn an_unknown_fumo_node_is_discovered_first() {
    let mut j = job();
    j.fumo_node = None;
    j.on(Event::SessionOpened, 0, &POLICY);
    let s = j.on(
        Event::FwV {
            version: "1.0",
            choice: delta(),
        },
        1,
        &POLICY,
    );
    assert_eq!(s.actions, vec![Action::Discover]);
    assert_eq!(j.state, JobState::InSession);
    let s = j.on(Event::Discovered(Some("./FwUpdate/a".into())), 2, &POLICY);
    assert!(matches!(&s.actions[..], [Action::Deliver { node, .. }] if node == "./FwUpdate/a"));
    let mut none = job();
    none.fumo_node = None;
    none.on(Event::SessionOpened, 0, &POLICY);
    none.on(
        Event::FwV {
            version: "1.0",
            choice: delta(),
        },
        1,
        &POLICY,
    );
    none.on(Event::Discovered(None), 2, &POLICY);
    assert_eq!(none.state, JobState::Failed);
}

#[test]
fn two_step_delivery_installs_after_the_download_report() {
    let mut j = job();
    j.mode = Some(Mode::UrlTwoStep);
    j.on(Event::SessionOpened, 0, &POLICY);
    j.on(
        Event::FwV {
            version: "1.0",
            choice: delta(),
        },
        1,
        &POLICY,
    );
    assert_eq!(j.stage, Some(Stage::Download));
    j.on(
        Event::Status {
            purpose: Purpose::Exec,
            code: 202,
        },
        2,
        &POLICY,
    );
    let s = j.on(
        Event::Report {
            code: Some(200),
            alert_type: Some("org.openmobilealliance.dm.firmwareupdate.download"),
        },
        3,
        &POLICY,
    );
    assert!(
        matches!(&s.actions[..], [Action::ExecUpdate { node, correlator }]
        if node == "./FUMO/fw1" && correlator == "upd-7-1")
    );
    assert_eq!(
        (j.state, j.stage),
        (JobState::Downloading, Some(Stage::Update))
    );
    j.on(
        Event::Status {
            purpose: Purpose::Exec,
            code: 202,
        },
        4,
        &POLICY,
    );
    j.on(
        Event::Report {
            code: Some(200),
            alert_type: None,
        },
        5,
        &POLICY,
    );
    assert_eq!(j.state, JobState::Confirming);
}

#[test]
fn a_refused_exec_is_classified_and_a_cancel_before_it_works() {
    let mut j = delivered();
    j.on(
        Event::Status {
            purpose: Purpose::Exec,
            code: 405,
        },
        0,
        &POLICY,
    );
    assert_eq!(j.state, JobState::Failed);
    let mut c = job();
    let s = c.cancel().expect("not sent yet");
    assert_eq!(c.state, JobState::Cancelled);
    assert_eq!(s.actions, vec![Action::CancelQueued]);
    assert!(
        c.on(Event::SessionOpened, 0, &POLICY).actions.is_empty(),
        "final"
    );
}

#[test]
fn correlators_round_trip() {
    assert_eq!(job::parse_correlator("upd-42-3"), Some((42, 3)));
    assert_eq!(job::parse_correlator("camp-1"), None);
}
