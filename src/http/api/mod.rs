//! The admin REST API under `/api/v1`.

mod devices;
mod operations;
mod tokens;
mod whoami;

use actix_web::web;

pub(super) use devices::{
    __path_create_device, __path_delete_device, __path_device_alerts, __path_device_sessions,
    __path_device_tree, __path_get_device, __path_list_devices, __path_notify_device, CreateDevice,
    Credentials, DevicePage, DeviceView, TreeNodeView,
};
pub(super) use operations::{
    __path_get_operation, __path_list_operations, __path_queue_operation, OperationView,
    QueueOperation,
};
pub(super) use tokens::{
    __path_create_token, __path_list_tokens, __path_revoke_token, CreateToken, CreatedToken,
    TokenView,
};
pub(super) use whoami::{__path_whoami, WhoAmI};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(whoami::whoami)
        .service(tokens::create_token)
        .service(tokens::list_tokens)
        .service(tokens::revoke_token)
        .service(devices::create_device)
        .service(devices::list_devices)
        .service(devices::get_device)
        .service(devices::delete_device)
        .service(devices::device_tree)
        .service(devices::device_sessions)
        .service(devices::device_alerts)
        .service(devices::notify_device)
        .service(operations::queue_operation)
        .service(operations::list_operations)
        .service(operations::get_operation)
        .service(super::openapi::openapi_json);
}
