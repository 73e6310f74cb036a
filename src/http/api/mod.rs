//! The admin REST API under `/api/v1`.

mod campaign_body;
mod campaigns;
mod device_import;
mod device_labels;
mod devices;
mod downloads;
mod firmware;
mod keys;
mod operations;
mod packages;
mod tokens;
mod updates;
mod whoami;

use actix_web::web;

pub(super) use campaign_body::{
    CampaignBody, CampaignPage, CampaignPatchBody, CampaignView, CohortBuildView, CohortKey,
    CohortRefBody, CohortView, MemberPage, MemberView, PackageView as CohortPackageView,
    PauseReasonView, PolicyBody, PreviewCohortView, PreviewView, PreviewWaveView, RetriesBody,
    ScheduleBody, TargetView, WaveBody, WaveView, WindowBody,
};
pub(super) use campaigns::{
    __path_campaign_devices, __path_campaign_events, __path_cancel_campaign,
    __path_create_campaign, __path_get_campaign, __path_list_campaigns, __path_patch_campaign,
    __path_pause_campaign, __path_preview_campaign, __path_resume_campaign,
    __path_retry_failed_campaign, __path_start_campaign,
};
pub(super) use device_import::__path_import_devices;
pub(super) use device_labels::{
    __path_bulk_tags, __path_patch_device, BulkTags, BulkTagsResult, PatchDevice,
};
pub(super) use devices::{
    __path_create_device, __path_delete_device, __path_device_alerts, __path_device_sessions,
    __path_device_tree, __path_get_device, __path_list_devices, __path_notify_device, DevicePage,
    DeviceView, TreeNodeView,
};
pub(super) use downloads::{
    __path_download_stats, __path_mint_download_link, DownloadLinkView, MintLink,
};
pub(super) use firmware::{
    __path_delete_firmware, __path_get_firmware, __path_list_firmware, __path_upload_firmware,
    FirmwarePage,
};
pub(super) use keys::{
    __path_create_key, __path_import_key, __path_list_keys, __path_retire_key, ImportKey, KeyView,
};
pub(super) use operations::{
    __path_cancel_operation, __path_get_operation, __path_list_operations, __path_queue_operation,
    __path_requeue_operation, __path_upload_operation, OperationView, QueueOperation,
};
pub(super) use packages::{
    __path_download_package, __path_get_build, __path_get_package, __path_list_builds,
    __path_list_packages, __path_request_builds, __path_upload_package, BuildJobPage, BuildJobView,
    BuildJobs, PackagePage, PackageView, RequestBuilds,
};
pub(super) use tokens::{
    __path_create_token, __path_list_tokens, __path_revoke_token, CreateToken, CreatedToken,
    TokenView,
};
pub(super) use updates::{
    __path_cancel_update, __path_create_update, __path_get_update, __path_list_device_updates,
    CreateUpdate, UpdateView,
};
pub(super) use whoami::{__path_whoami, WhoAmI};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(whoami::whoami)
        .service(tokens::create_token)
        .service(tokens::list_tokens)
        .service(tokens::revoke_token)
        // The fixed `tags` and `import` paths before `{id}`.
        .service(device_labels::bulk_tags)
        .service(device_import::import_devices)
        .service(devices::create_device)
        .service(devices::list_devices)
        .service(devices::get_device)
        .service(device_labels::patch_device)
        .service(devices::delete_device)
        .service(devices::device_tree)
        .service(devices::device_sessions)
        .service(devices::device_alerts)
        .service(devices::notify_device)
        .service(operations::queue_operation)
        .service(operations::list_operations)
        .service(operations::upload_operation)
        .service(operations::get_operation)
        .service(operations::cancel_operation)
        .service(operations::requeue_operation)
        .service(firmware::upload_firmware)
        .service(firmware::list_firmware)
        .service(firmware::get_firmware)
        .service(firmware::delete_firmware)
        .service(keys::create_key)
        .service(keys::list_keys)
        .service(keys::import_key)
        .service(keys::retire_key)
        // The fixed `builds` paths before `{id}`.
        .service(packages::request_builds)
        .service(packages::list_builds)
        .service(packages::get_build)
        .service(packages::upload_package)
        .service(packages::list_packages)
        .service(packages::get_package)
        .service(packages::download_package)
        .service(updates::create_update)
        .service(updates::list_device_updates)
        .service(updates::get_update)
        .service(updates::cancel_update)
        // The fixed `preview` path before `{id}`.
        .service(campaigns::preview_campaign)
        .service(campaigns::create_campaign)
        .service(campaigns::list_campaigns)
        .service(campaigns::get_campaign)
        .service(campaigns::patch_campaign)
        .service(campaigns::campaign_devices)
        .service(campaigns::campaign_events)
        .service(campaigns::start_campaign)
        .service(campaigns::pause_campaign)
        .service(campaigns::resume_campaign)
        .service(campaigns::cancel_campaign)
        .service(campaigns::retry_failed_campaign)
        .service(downloads::mint_download_link)
        .service(downloads::download_stats)
        .service(super::openapi::openapi_json);
}
