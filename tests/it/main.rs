//! The integration-test binary: one binary, one helpers module, a file per area.

mod helpers;

mod api_tokens;
mod blob_conformance;
mod build_queue;
mod campaigns_api;
mod campaigns_e2e;
mod devices_api;
mod devices_fleet;
mod devices_import;
mod dm_atomic;
mod dm_auth;
mod dm_endpoint;
mod dm_notify;
mod dm_operations;
mod dm_sessions;
mod downloads;
mod firmware_api;
mod fumo_jobs;
mod heap_window;
mod http_edge;
mod keys_api;
mod lifecycle;
mod openapi;
mod packages_api;
mod sim_fumo_jobs;
mod sim_two_step;
mod sim_update;
mod skips;
mod store_tokens;
mod tidy;
mod updates_api;

/// Counts live heap bytes per measurement window so that streaming tests can assert flat memory.
#[global_allocator]
static ALLOCATOR: helpers::alloc::CountingAllocator = helpers::alloc::CountingAllocator;
