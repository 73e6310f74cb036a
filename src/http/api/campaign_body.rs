//! The campaign's JSON: the request body (parsed strictly, then resolved by
//! `crate::campaigns`), the views of a campaign, its cohorts, waves and members, and the dry
//! run. Kept apart from the stored shapes so either can change without breaking the other.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveTime, Utc, Weekday};
use serde::{Deserialize, Serialize};

use crate::campaign::{self, CampaignState, PauseKind, WaveSize, WaveState, Window};
use crate::campaigns::{CampaignRequest, CohortPackage, PackageState, Preview};
use crate::fumo::PackageKind;
use crate::http::ApiError;
use crate::selector::Selector;

/// A wave: `{"size": 5}` devices or `{"size": "20%"}` of the eligible selection.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaveBody {
    #[schema(value_type = Object, example = json!("20%"))]
    pub size: WaveSizeBody,
}

#[derive(Deserialize, Serialize, Clone)]
#[serde(untagged)]
pub enum WaveSizeBody {
    Count(u64),
    Text(String),
}

#[derive(Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    /// A finished wave advances when its succeeded / verdicts reaches this, after the soak
    /// (default: 1 − `pause_failure_ratio`).
    pub advance_success_ratio: Option<f64>,
    /// Pause at once when the failed / verdicts of a wave or of a cohort (model × source
    /// version) exceeds this (default 0.1)…
    pub pause_failure_ratio: Option<f64>,
    /// …once it has at least this many verdicts (default 5).
    pub min_sample: Option<u64>,
    /// Seconds between a wave's last verdict and the next wave (default 0).
    pub soak_secs: Option<u64>,
}

impl PolicyBody {
    /// This body over `base`. A new campaign's advance ratio defaults to 1 − its pause ratio,
    /// so that a wave that never tripped the failure gate passes the advance gate.
    fn over(self, base: campaign::Policy, new: bool) -> campaign::Policy {
        let pause = self.pause_failure_ratio.unwrap_or(base.pause_failure_ratio);
        let advance = match self.advance_success_ratio {
            Some(a) => a,
            None if new => 1.0 - pause,
            None => base.advance_success_ratio,
        };
        campaign::Policy {
            advance_success_ratio: advance,
            pause_failure_ratio: pause,
            min_sample: self.min_sample.unwrap_or(base.min_sample),
            soak_secs: self.soak_secs.unwrap_or(base.soak_secs),
        }
    }
}

/// A maintenance window in the device's local time.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowBody {
    /// `mon` … `sun`; empty or absent: every day.
    #[serde(default)]
    pub days: Vec<String>,
    /// `HH:MM` local opening time.
    pub start: String,
    /// `HH:MM` local closing time; at or before `start`: the next day.
    pub end: String,
}

#[derive(Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    /// When a started campaign starts its first devices (default: at once).
    pub start_at: Option<DateTime<Utc>>,
    /// Devices started and without a verdict at most.
    pub max_concurrent: Option<u32>,
    /// Devices started in any 60 seconds at most.
    pub max_starts_per_minute: Option<u32>,
    #[serde(default)]
    pub windows: Vec<WindowBody>,
    /// IANA time zone of devices that have none (default UTC).
    pub timezone: Option<String>,
}

#[derive(Deserialize, Serialize, utoipa::ToSchema, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct RetriesBody {
    /// Attempts per device, the first included (default: `updates.max_attempts`).
    pub max_attempts: u32,
    /// The first retry's backoff, doubled per attempt (default: `updates.retry_base_secs`).
    pub backoff_secs: u64,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignBody {
    pub name: String,
    /// One firmware per (manufacturer, model) the campaign covers.
    pub target_firmware_ids: Vec<i64>,
    #[serde(default)]
    pub selector: Selector,
    pub waves: Vec<WaveBody>,
    #[serde(default)]
    pub policy: PolicyBody,
    #[serde(default)]
    pub schedule: ScheduleBody,
    pub retries: Option<RetriesBody>,
    /// Each device's job times out this long after it starts (default:
    /// `updates.default_deadline_secs`).
    pub device_deadline_secs: Option<u64>,
    /// `url`, `inline` or `auto` (default).
    pub delivery: Option<String>,
    /// `static` (default): the devices selected at creation. `dynamic`: devices that match
    /// later (newly provisioned, or changed) join the current wave.
    pub membership: Option<String>,
    /// Start at once instead of creating a draft.
    #[serde(default)]
    pub start: bool,
}

fn bad(field: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::Unprocessable {
        code: "invalid_campaign",
        message: format!("{field}: {message}"),
    }
}

fn wave(w: &WaveSizeBody) -> Result<WaveSize, ApiError> {
    match w {
        WaveSizeBody::Count(n) => Ok(WaveSize::Count(*n)),
        WaveSizeBody::Text(t) => {
            let t = t.trim();
            if let Some(p) = t.strip_suffix('%') {
                p.trim()
                    .parse::<f64>()
                    .map(WaveSize::Percent)
                    .map_err(|_| bad("waves", format!("{t:?} is not a percentage")))
            } else {
                t.parse::<u64>()
                    .map(WaveSize::Count)
                    .map_err(|_| bad("waves", format!("{t:?}: a count or \"N%\"")))
            }
        }
    }
}

fn time(field: &str, s: &str) -> Result<NaiveTime, ApiError> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M")
        .map_err(|_| bad(field, format!("{s:?} is not HH:MM")))
}

fn windows(body: &[WindowBody]) -> Result<Vec<Window>, ApiError> {
    body.iter()
        .map(|w| {
            let days = w
                .days
                .iter()
                .map(|d| {
                    d.trim()
                        .parse::<Weekday>()
                        .map_err(|_| bad("schedule.windows.days", format!("{d:?} is not a day")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Window {
                days,
                start: time("schedule.windows.start", &w.start)?,
                end: time("schedule.windows.end", &w.end)?,
            })
        })
        .collect()
}

pub(super) fn policy(body: PolicyBody, base: campaign::Policy) -> campaign::Policy {
    body.over(base, false)
}

impl CampaignBody {
    pub fn into_request(self) -> Result<CampaignRequest, ApiError> {
        if self.waves.len() > campaign::spec::MAX_WAVES {
            return Err(bad(
                "waves",
                format!("at most {}", campaign::spec::MAX_WAVES),
            ));
        }
        let waves = self
            .waves
            .iter()
            .map(|w| wave(&w.size))
            .collect::<Result<_, _>>()?;
        let delivery = match self.delivery.as_deref().unwrap_or("auto") {
            "url" => campaign::Delivery::Url,
            "inline" => campaign::Delivery::Inline,
            "auto" => campaign::Delivery::Auto,
            other => return Err(bad("delivery", format!("{other:?}: url, inline or auto"))),
        };
        let membership = match self.membership.as_deref().unwrap_or("static") {
            "static" => campaign::Membership::Static,
            "dynamic" => campaign::Membership::Dynamic,
            other => return Err(bad("membership", format!("{other:?}: static or dynamic"))),
        };
        self.selector.validate().map_err(|e| bad("selector", e))?;
        Ok(CampaignRequest {
            name: self.name,
            target_firmware_ids: self.target_firmware_ids,
            selector: self.selector,
            waves,
            policy: self.policy.over(campaign::Policy::default(), true),
            schedule: campaign::Schedule {
                start_at_ms: self.schedule.start_at.map(|t| t.timestamp_millis()),
                windows: windows(&self.schedule.windows)?,
                timezone: self.schedule.timezone,
                max_starts_per_minute: self.schedule.max_starts_per_minute,
                max_concurrent: self.schedule.max_concurrent,
            },
            retries: self.retries.map(|r| campaign::Retries {
                max_attempts: r.max_attempts,
                backoff_secs: r.backoff_secs,
            }),
            device_deadline_secs: self.device_deadline_secs,
            delivery,
            membership,
            start: self.start,
        })
    }
}

#[derive(Serialize, utoipa::ToSchema, Clone)]
pub struct CohortKey {
    pub manufacturer: String,
    pub model: String,
    pub version: String,
}

impl From<&campaign::Cohort> for CohortKey {
    fn from(c: &campaign::Cohort) -> Self {
        CohortKey {
            manufacturer: c.manufacturer.clone(),
            model: c.model.clone(),
            version: c.version.clone(),
        }
    }
}

/// Why a campaign stopped.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PauseReasonView {
    pub kind: PauseKind,
    /// In words, for people.
    pub message: String,
    /// The operator (token name) who paused it.
    pub by: Option<String>,
    pub wave: Option<u32>,
    /// The cohort that tripped the gate (or, for a wave, the one holding most of its failures).
    pub cohort: Option<CohortKey>,
    pub failed: Option<u64>,
    pub verdicts: Option<u64>,
    /// The figure compared: a failure ratio, or a success ratio for the advance gate.
    pub ratio: Option<f64>,
    pub threshold: Option<f64>,
    pub at: Option<DateTime<Utc>>,
}

impl From<&campaign::PauseReason> for PauseReasonView {
    fn from(r: &campaign::PauseReason) -> Self {
        PauseReasonView {
            kind: r.kind,
            message: r.message.clone(),
            by: r.by.clone(),
            wave: r.wave,
            cohort: r.cohort.as_ref().map(Into::into),
            failed: r.failed,
            verdicts: r.verdicts,
            ratio: r.ratio,
            threshold: r.threshold,
            at: DateTime::from_timestamp_millis(r.at_ms),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PackageView {
    pub state: PackageState,
    pub package_id: Option<i64>,
    pub kind: Option<PackageKind>,
    pub size: Option<u64>,
    pub note: Option<String>,
}

impl From<&CohortPackage> for PackageView {
    fn from(p: &CohortPackage) -> Self {
        PackageView {
            state: p.state,
            package_id: p.package_id,
            kind: p.kind,
            size: p.size,
            note: p.note.clone(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PreviewCohortView {
    pub manufacturer: String,
    pub model: String,
    pub version: String,
    pub devices: u64,
    pub target_firmware_id: Option<i64>,
    pub target_version: Option<String>,
    pub package: PackageView,
    /// Bytes this cohort's devices would download.
    pub bytes: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PreviewWaveView {
    pub index: u32,
    pub devices: u64,
    /// Expected bytes: the wave's share of the total (waves are uniform samples).
    pub bytes: u64,
}

/// The dry run: nothing is written.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PreviewView {
    pub selected: u64,
    pub eligible: u64,
    pub waves: Vec<PreviewWaveView>,
    pub cohorts: Vec<PreviewCohortView>,
    /// Excluded devices by reason (`no_target`, `already_on_target`, `busy`).
    pub excluded: BTreeMap<String, u64>,
    pub total_bytes: u64,
    /// Cohorts whose package does not exist yet (built when the campaign is created) or
    /// cannot be had.
    pub missing_packages: u64,
}

impl From<Preview> for PreviewView {
    fn from(p: Preview) -> Self {
        PreviewView {
            selected: p.selected,
            eligible: p.eligible,
            waves: p
                .wave_sizes
                .iter()
                .zip(&p.wave_bytes)
                .enumerate()
                .map(|(i, (n, b))| PreviewWaveView {
                    index: i as u32,
                    devices: *n,
                    bytes: *b,
                })
                .collect(),
            missing_packages: p
                .cohorts
                .iter()
                .filter(|c| c.package.state != PackageState::Ready)
                .count() as u64,
            cohorts: p
                .cohorts
                .iter()
                .map(|c| PreviewCohortView {
                    manufacturer: c.cohort.manufacturer.clone(),
                    model: c.cohort.model.clone(),
                    version: c.cohort.version.clone(),
                    devices: c.devices,
                    target_firmware_id: c.target.as_ref().map(|t| t.firmware_id),
                    target_version: c.target.as_ref().map(|t| t.version.clone()),
                    package: (&c.package).into(),
                    bytes: c.package.size.unwrap_or(0) * c.devices,
                })
                .collect(),
            excluded: p.excluded.into_iter().collect(),
            total_bytes: p.total_bytes,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WaveView {
    pub index: u32,
    pub size: u64,
    pub state: WaveState,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Members by state (`planned`, `excluded`, and the update-job states).
    pub counts: BTreeMap<String, u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CohortView {
    pub manufacturer: String,
    pub model: String,
    pub version: String,
    pub target_firmware_id: Option<i64>,
    pub devices: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub in_progress: u64,
    pub planned: u64,
    pub excluded: u64,
    pub success_ratio: Option<f64>,
    pub failure_ratio: Option<f64>,
    /// The package its devices get, once it exists (their start waits for it).
    pub package_id: Option<i64>,
    pub full_build_id: Option<i64>,
    pub delta_build_id: Option<i64>,
    /// The cohort's builds with their state and last error: build failures show here.
    pub builds: Vec<CohortBuildView>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CohortBuildView {
    pub id: i64,
    /// `full` or `delta`.
    pub kind: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub state: String,
    pub error: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TargetView {
    pub firmware_id: i64,
    pub manufacturer: String,
    pub model: String,
    pub version: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CampaignView {
    pub id: i64,
    pub name: String,
    pub state: CampaignState,
    pub pause_reason: Option<PauseReasonView>,
    pub targets: Vec<TargetView>,
    #[schema(value_type = Object)]
    pub selector: Selector,
    pub current_wave: u32,
    pub waves: Vec<WaveView>,
    /// Every selected device by state; they add up to `selected`.
    pub counts: BTreeMap<String, u64>,
    pub selected: u64,
    /// Excluded devices by reason.
    pub exclusions: BTreeMap<String, u64>,
    pub cohorts: Vec<CohortView>,
    /// Package bytes the download route served for the campaign's jobs.
    pub bytes_served: u64,
    #[schema(value_type = Object)]
    pub policy: serde_json::Value,
    #[schema(value_type = Object)]
    pub schedule: serde_json::Value,
    pub retries: RetriesBody,
    pub device_deadline_secs: u64,
    pub delivery: String,
    pub membership: String,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CampaignPage {
    pub campaigns: Vec<CampaignView>,
    /// Pass as `before` for the next page.
    pub next: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MemberView {
    pub device_id: String,
    /// 0-based; absent for devices excluded at creation.
    pub wave: Option<u32>,
    /// `planned`, `excluded`, or the update job's state.
    pub state: String,
    pub exclusion: Option<String>,
    pub manufacturer: String,
    pub model: String,
    pub version: String,
    pub job_id: Option<i64>,
    pub result_code: Option<u32>,
    pub failure: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MemberPage {
    pub devices: Vec<MemberView>,
    pub next: Option<String>,
}

/// `PATCH`: exclusions and policies of a paused or draft campaign.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignPatchBody {
    #[serde(default)]
    pub exclude_cohorts: Vec<CohortRefBody>,
    pub policy: Option<PolicyBody>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CohortRefBody {
    pub manufacturer: Option<String>,
    pub model: String,
    pub version: String,
}
