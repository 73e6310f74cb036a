//! Campaigns: create (or dry-run) a campaign over a selected fleet, follow it wave by wave and
//! cohort by cohort, and steer it (start, pause, resume, cancel, retry the failed, exclude a
//! cohort or change its policy while paused).

use std::collections::BTreeMap;

use actix_web::{HttpResponse, get, patch, post, web};
use serde::Deserialize;

use super::campaign_body::{
    CampaignBody, CampaignPage, CampaignPatchBody, CampaignView, CohortBuildView, CohortView,
    MemberPage, MemberView, PreviewView, RetriesBody, TargetView, WaveView, policy,
};
use crate::access::Role;
use crate::campaign::{CampaignState, MemberState};
use crate::campaigns::CampaignError;
use crate::campaigns::actions::{CampaignPatch, CohortRef};
use crate::http::{ApiError, AppState, Caller, ErrorBody};
use crate::store::{CampaignRecord, EventRecord, MemberFilter};

impl From<CampaignError> for ApiError {
    fn from(e: CampaignError) -> Self {
        match e {
            CampaignError::Invalid(_)
            | CampaignError::NoFirmware(_)
            | CampaignError::TooManyCohorts(..) => ApiError::Unprocessable {
                code: "invalid_campaign",
                message: e.to_string(),
            },
            CampaignError::NotFound(_) => ApiError::NotFound(e.to_string()),
            CampaignError::NotNow(_) | CampaignError::Contended => {
                ApiError::Conflict(e.to_string())
            }
            CampaignError::Store(s) => s.into(),
        }
    }
}

pub(super) async fn view(state: &AppState, r: CampaignRecord) -> Result<CampaignView, ApiError> {
    let store = &state.store;
    let tally = store.members().tally(r.id).await?;
    let counts_of = |pick: &dyn Fn(Option<u32>) -> bool| -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for (w, _, s, n) in tally.iter() {
            if pick(w) {
                *m.entry(s.as_str().to_owned()).or_insert(0) += n;
            }
        }
        m
    };
    let waves = r
        .machine
        .waves
        .iter()
        .enumerate()
        .map(|(i, w)| WaveView {
            index: i as u32,
            size: w.size,
            state: w.state,
            started_at: w
                .started_at_ms
                .and_then(chrono::DateTime::from_timestamp_millis),
            finished_at: w
                .finished_at_ms
                .and_then(chrono::DateTime::from_timestamp_millis),
            counts: counts_of(&|wave| wave == Some(i as u32)),
        })
        .collect();
    let records = store.members().cohorts(r.id).await?;
    let mut builds = BTreeMap::new();
    for c in &records {
        for (kind, id) in [("full", c.full_job_id), ("delta", c.delta_job_id)] {
            if let Some(id) = id
                && let Some(job) = store.packages().job(id).await?
            {
                builds.insert(id, (kind, job));
            }
        }
    }
    let cohorts = records
        .into_iter()
        .map(|c| {
            let v = tally.cohort_verdicts(&c.cohort);
            let sum = |f: &dyn Fn(MemberState) -> bool| -> u64 {
                tally
                    .iter()
                    .filter(|(w, k, s, _)| w.is_some() && **k == c.cohort && f(*s))
                    .map(|(_, _, _, n)| n)
                    .sum()
            };
            CohortView {
                manufacturer: c.cohort.manufacturer.clone(),
                model: c.cohort.model.clone(),
                version: c.cohort.version.clone(),
                target_firmware_id: c.target_firmware_id,
                devices: c.devices,
                succeeded: v.succeeded,
                failed: v.failed,
                in_progress: sum(&|s| s.in_progress()),
                planned: sum(&|s| s == MemberState::Planned),
                excluded: sum(&|s| s == MemberState::Excluded),
                success_ratio: (v.total() > 0).then(|| v.success_ratio()),
                failure_ratio: (v.total() > 0).then(|| v.failure_ratio()),
                package_id: c.package_id,
                full_build_id: c.full_job_id,
                delta_build_id: c.delta_job_id,
                builds: [c.full_job_id, c.delta_job_id]
                    .into_iter()
                    .flatten()
                    .filter_map(|id| builds.get(&id))
                    .map(|(kind, job)| CohortBuildView {
                        id: job.id,
                        kind: (*kind).to_owned(),
                        state: job.state.as_str().to_owned(),
                        error: job.error.clone(),
                    })
                    .collect(),
            }
        })
        .collect();
    let exclusions = store
        .members()
        .exclusions(r.id)
        .await?
        .into_iter()
        .collect();
    let bytes_served = store.downloads().bytes_for_campaign(r.id).await?;
    let spec = &r.spec;
    Ok(CampaignView {
        id: r.id,
        name: r.name.clone(),
        state: r.machine.state,
        pause_reason: r.machine.pause_reason.as_ref().map(Into::into),
        targets: spec
            .targets
            .iter()
            .map(|t| TargetView {
                firmware_id: t.firmware_id,
                manufacturer: t.manufacturer.clone(),
                model: t.model.clone(),
                version: t.version.clone(),
            })
            .collect(),
        selector: spec.selector.clone(),
        current_wave: r.machine.current_wave,
        waves,
        counts: counts_of(&|_| true),
        selected: tally.total(),
        exclusions,
        cohorts,
        bytes_served,
        policy: serde_json::to_value(spec.policy).unwrap_or_default(),
        schedule: serde_json::json!({
            "start_at": spec.schedule.start_at_ms.and_then(chrono::DateTime::from_timestamp_millis),
            "max_concurrent": spec.schedule.max_concurrent,
            "max_starts_per_minute": spec.schedule.max_starts_per_minute,
            "timezone": spec.schedule.timezone,
            "windows": spec.schedule.windows.iter().map(|w| serde_json::json!({
                "days": w.days.iter().map(|d| d.to_string().to_lowercase()).collect::<Vec<_>>(),
                "start": w.start.format("%H:%M").to_string(),
                "end": w.end.format("%H:%M").to_string(),
            })).collect::<Vec<_>>(),
        }),
        retries: RetriesBody {
            max_attempts: spec.retries.max_attempts,
            backoff_secs: spec.retries.backoff_secs,
        },
        device_deadline_secs: spec.device_deadline_secs,
        delivery: spec.delivery.as_str().to_owned(),
        membership: match spec.membership {
            crate::campaign::Membership::Static => "static".into(),
            crate::campaign::Membership::Dynamic => "dynamic".into(),
        },
        created_by: r.created_by.clone(),
        created_at: r.created_at,
        updated_at: r.updated_at,
        started_at: r
            .machine
            .started_at_ms
            .and_then(chrono::DateTime::from_timestamp_millis),
        finished_at: r.finished_at,
    })
}

async fn load(state: &AppState, id: i64) -> Result<CampaignRecord, ApiError> {
    state
        .store
        .campaigns()
        .get(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no campaign with id {id}")))
}

async fn reply(state: &AppState, id: i64) -> Result<HttpResponse, ApiError> {
    let r = load(state, id).await?;
    Ok(HttpResponse::Ok().json(view(state, r).await?))
}

/// Creates a campaign: its members are selected now (a draft, unless `start` is true), and
/// the builds every cohort needs are queued at once.
#[utoipa::path(post, path = "/api/v1/campaigns", tag = "campaigns", security(("bearer" = [])),
    request_body = CampaignBody,
    responses(
        (status = 201, body = CampaignView),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "another campaign claimed some devices at the same time", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, description = "the campaign is not valid (field named)", body = ErrorBody),
    ))]
#[post("/api/v1/campaigns")]
pub async fn create_campaign(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<CampaignBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let request = body.into_inner().into_request()?;
    let spec = state.campaigns.spec(&request).await?;
    let id = state
        .campaigns
        .create(spec, request.start, &caller.token.name, chrono::Utc::now())
        .await?;
    let r = load(&state, id).await?;
    Ok(HttpResponse::Created().json(view(&state, r).await?))
}

/// The dry run: devices per wave, cohorts with the package each would get (delta or full,
/// size, or missing), bytes in total and per wave, exclusions. Writes nothing.
#[utoipa::path(post, path = "/api/v1/campaigns/preview", tag = "campaigns", security(("bearer" = [])),
    request_body = CampaignBody,
    responses(
        (status = 200, body = PreviewView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
#[post("/api/v1/campaigns/preview")]
pub async fn preview_campaign(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<CampaignBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let request = body.into_inner().into_request()?;
    let spec = state.campaigns.spec(&request).await?;
    let preview = state.campaigns.preview(&spec).await?;
    Ok(HttpResponse::Ok().json(PreviewView::from(preview)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CampaignListQuery {
    /// Only campaigns in this state.
    pub state: Option<String>,
    /// Campaigns older than this id (the previous page's `next`).
    pub before: Option<i64>,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<u64>,
}

/// Campaigns, newest first.
#[utoipa::path(get, path = "/api/v1/campaigns", tag = "campaigns", security(("bearer" = [])),
    params(CampaignListQuery),
    responses((status = 200, body = CampaignPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
#[get("/api/v1/campaigns")]
pub async fn list_campaigns(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<CampaignListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 100".into(),
        ));
    }
    let filter = match query.state.as_deref() {
        None => None,
        Some(s) => Some(CampaignState::parse(s).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "state {s:?}: draft, scheduled, running, paused, succeeded, failed or cancelled"
            ))
        })?),
    };
    let records = state
        .store
        .campaigns()
        .list(filter, query.before, limit)
        .await?;
    let next = (records.len() as u64 == limit)
        .then(|| records.last().map(|r| r.id))
        .flatten();
    let mut campaigns = Vec::with_capacity(records.len());
    for r in records {
        campaigns.push(view(&state, r).await?);
    }
    Ok(HttpResponse::Ok().json(CampaignPage { campaigns, next }))
}

/// A campaign: state, pause reason, waves with counts per state, cohorts, bytes served.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}", tag = "campaigns", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = CampaignView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[get("/api/v1/campaigns/{id}")]
pub async fn get_campaign(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    reply(&state, *id).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MemberQuery {
    /// `planned`, `excluded` or an update-job state.
    pub state: Option<String>,
    pub wave: Option<u32>,
    pub model: Option<String>,
    pub version: Option<String>,
    pub result_code: Option<u32>,
    /// The previous page's `next` (a device id).
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<u64>,
}

/// The campaign's devices with their wave, state and last result code.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/devices", tag = "campaigns", security(("bearer" = [])),
    params(("id" = i64, Path), MemberQuery),
    responses((status = 200, body = MemberPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[get("/api/v1/campaigns/{id}/devices")]
pub async fn campaign_devices(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    query: web::Query<MemberQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    load(&state, *id).await?;
    let q = query.into_inner();
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 500".into(),
        ));
    }
    let filter = MemberFilter {
        state: match q.state.as_deref() {
            None => None,
            Some(s) => Some(MemberState::parse(s).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "state {s:?}: planned, excluded or an update-job state"
                ))
            })?),
        },
        wave: q.wave,
        model: q.model,
        version: q.version,
        result_code: q.result_code,
    };
    let members = state
        .store
        .members()
        .list(*id, &filter, q.after.as_deref(), limit)
        .await?;
    let next = (members.len() as u64 == limit)
        .then(|| members.last().map(|m| m.device_id.clone()))
        .flatten();
    Ok(HttpResponse::Ok().json(MemberPage {
        devices: members
            .into_iter()
            .map(|m| MemberView {
                device_id: m.device_id,
                wave: m.wave,
                state: m.state.as_str().to_owned(),
                exclusion: m.exclusion,
                manufacturer: m.cohort.manufacturer,
                model: m.cohort.model,
                version: m.cohort.version,
                job_id: m.job_id,
                result_code: m.result_code,
                failure: m.failure,
                started_at: m.started_at,
                finished_at: m.finished_at,
            })
            .collect(),
        next,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Events after this id.
    pub after: Option<i64>,
    /// 1 to 500 (default 100).
    pub limit: Option<u64>,
}

/// The campaign's event log, oldest first.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/events", tag = "campaigns", security(("bearer" = [])),
    params(("id" = i64, Path), EventQuery),
    responses((status = 200, body = [EventRecord]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[get("/api/v1/campaigns/{id}/events")]
pub async fn campaign_events(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    query: web::Query<EventQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    load(&state, *id).await?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 500".into(),
        ));
    }
    let events = state
        .store
        .campaigns()
        .events(*id, query.after, limit)
        .await?;
    Ok(HttpResponse::Ok().json(events))
}

macro_rules! action {
    ($fn:ident, $path:literal, $doc:literal, $call:ident) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "campaigns", security(("bearer" = [])),
            params(("id" = i64, Path)),
            responses(
                (status = 200, body = CampaignView),
                (status = 401, body = ErrorBody),
                (status = 403, body = ErrorBody),
                (status = 404, body = ErrorBody),
                (status = 409, description = "not possible in the campaign's state", body = ErrorBody),
            ))]
        #[post($path)]
        pub async fn $fn(
            caller: Caller,
            state: web::Data<AppState>,
            id: web::Path<i64>,
        ) -> Result<HttpResponse, ApiError> {
            caller.require(Role::Operator)?;
            state
                .campaigns
                .$call(*id, &caller.token.name, chrono::Utc::now())
                .await?;
            reply(&state, *id).await
        }
    };
}

action!(
    start_campaign,
    "/api/v1/campaigns/{id}/start",
    "Starts a draft (at once, or at its `schedule.start_at`).",
    start
);
action!(
    pause_campaign,
    "/api/v1/campaigns/{id}/pause",
    "Pauses: no device starts until it is resumed.",
    pause
);
action!(
    resume_campaign,
    "/api/v1/campaigns/{id}/resume",
    "Goes on from a pause; the gates that stood tripped count only new failures.",
    resume
);
action!(
    cancel_campaign,
    "/api/v1/campaigns/{id}/cancel",
    "Cancels: no new starts, jobs not yet sent are cancelled, jobs in flight finish and are recorded.",
    cancel
);

action!(
    retry_failed_campaign,
    "/api/v1/campaigns/{id}/retry-failed",
    "Plans the failed devices again (a failed campaign runs again from its last wave).",
    retry_failed
);

/// Edits a paused or draft campaign: exclude cohorts (their devices not started never start;
/// all of them leave the counts' ratios), change its policy.
#[utoipa::path(patch, path = "/api/v1/campaigns/{id}", tag = "campaigns", security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = CampaignPatchBody,
    responses(
        (status = 200, body = CampaignView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the campaign is not paused or a draft, or names no such cohort", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
#[patch("/api/v1/campaigns/{id}")]
pub async fn patch_campaign(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<CampaignPatchBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let current = load(&state, *id).await?;
    let b = body.into_inner();
    if b.exclude_cohorts.len() > 1000 {
        return Err(ApiError::BadRequest("at most 1000 cohorts per edit".into()));
    }
    let patch = CampaignPatch {
        exclude_cohorts: b
            .exclude_cohorts
            .into_iter()
            .map(|c| CohortRef {
                manufacturer: c.manufacturer,
                model: c.model,
                version: c.version,
            })
            .collect(),
        policy: b.policy.map(|p| policy(p, current.spec.policy)),
    };
    state
        .campaigns
        .patch(*id, &patch, &caller.token.name, chrono::Utc::now())
        .await?;
    reply(&state, *id).await
}
