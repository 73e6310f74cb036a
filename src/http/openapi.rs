//! The OpenAPI document, generated from the handlers' annotations and served at `/api/v1/openapi.json`.
//!
//! `openapi/openapi.json` in the repository is this document, committed; a test fails
//! when they drift apart (`UPDATE_OPENAPI=1 cargo test` rewrites the file).

use actix_web::{HttpResponse, get};
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(title = "Updraft admin API", description = "Firmware-over-the-air campaigns, firmware, packages and devices."),
    paths(
        super::health::healthz,
        super::health::readyz,
        super::health::metrics,
        super::api::whoami,
        super::api::create_token,
        super::api::list_tokens,
        super::api::revoke_token,
        super::api::create_device,
        super::api::list_devices,
        super::api::get_device,
        super::api::patch_device,
        super::api::bulk_tags,
        super::api::import_devices,
        super::api::delete_device,
        super::api::device_tree,
        super::api::device_sessions,
        super::api::device_alerts,
        super::api::notify_device,
        super::api::queue_operation,
        super::api::list_operations,
        super::api::upload_operation,
        super::api::get_operation,
        super::api::cancel_operation,
        super::api::requeue_operation,
        super::api::upload_firmware,
        super::api::list_firmware,
        super::api::get_firmware,
        super::api::delete_firmware,
        super::api::create_key,
        super::api::list_keys,
        super::api::import_key,
        super::api::retire_key,
        super::api::request_builds,
        super::api::list_builds,
        super::api::get_build,
        super::api::upload_package,
        super::api::list_packages,
        super::api::get_package,
        super::api::download_package,
        super::api::create_update,
        super::api::list_device_updates,
        super::api::get_update,
        super::api::cancel_update,
        super::api::mint_download_link,
        super::api::download_stats,
        super::api::preview_campaign,
        super::api::create_campaign,
        super::api::list_campaigns,
        super::api::get_campaign,
        super::api::patch_campaign,
        super::api::campaign_devices,
        super::api::campaign_events,
        super::api::start_campaign,
        super::api::pause_campaign,
        super::api::resume_campaign,
        super::api::cancel_campaign,
        super::api::retry_failed_campaign,
        openapi_json,
    ),
    components(schemas(
        super::ErrorBody,
        super::error::ErrorDetail,
        super::api::WhoAmI,
        super::api::CreateToken,
        super::api::CreatedToken,
        super::api::TokenView,
        crate::devices::provision::CreateDevice,
        crate::devices::provision::Credentials,
        crate::devices::provision::FactoryInventory,
        super::api::DeviceView,
        super::api::PatchDevice,
        super::api::BulkTags,
        super::api::BulkTagsResult,
        crate::devices::import::ImportReport,
        crate::devices::import::LineError,
        crate::devices::import::LineSpan,
        crate::selector::Selector,
        super::api::DevicePage,
        super::api::TreeNodeView,
        super::api::QueueOperation,
        super::api::OperationView,
        crate::store::Inventory,
        crate::store::SessionLogLine,
        crate::store::StoredAlert,
        crate::store::NotificationRecord,
        crate::store::OperationState,
        super::api::FirmwarePage,
        super::api::KeyView,
        super::api::ImportKey,
        super::api::PackageView,
        super::api::PackagePage,
        super::api::BuildJobView,
        super::api::BuildJobPage,
        super::api::BuildJobs,
        super::api::RequestBuilds,
        super::api::MintLink,
        super::api::DownloadLinkView,
        crate::store::DownloadStats,
        crate::store::InstallReport,
        crate::store::Firmware,
        crate::store::KeyState,
        crate::store::KeyOrigin,
        crate::store::JobState,
        crate::store::PackageKind,
        crate::store::PackageOrigin,
        super::api::CreateUpdate,
        super::api::UpdateView,
        crate::store::HistoryLine,
        crate::fumo::JobState,
        crate::fumo::PackageKind,
        super::api::CampaignBody,
        super::api::WaveBody,
        super::api::PolicyBody,
        super::api::ScheduleBody,
        super::api::WindowBody,
        super::api::RetriesBody,
        super::api::CampaignView,
        super::api::CampaignPage,
        super::api::CampaignPatchBody,
        super::api::CohortRefBody,
        super::api::CohortKey,
        super::api::CohortView,
        super::api::CohortBuildView,
        super::api::CohortPackageView,
        super::api::MemberView,
        super::api::MemberPage,
        super::api::PauseReasonView,
        super::api::PreviewView,
        super::api::PreviewCohortView,
        super::api::PreviewWaveView,
        super::api::TargetView,
        super::api::WaveView,
        crate::store::EventRecord,
        crate::campaign::CampaignState,
        crate::campaign::WaveState,
        crate::campaign::PauseKind,
        crate::campaigns::PackageState,
    )),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document as pretty JSON with a trailing newline, exactly as committed.
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let mut json = doc
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    json.push('\n');
    json
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200, description = "OpenAPI document")))]
#[get("/api/v1/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}
