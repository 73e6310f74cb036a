//! The integration-test binary: one binary, one helpers module, a file per area.

mod helpers;

mod api_tokens;
mod blob_conformance;
mod build_queue;
mod devices_api;
mod dm_atomic;
mod dm_auth;
mod dm_endpoint;
mod dm_sessions;
mod firmware_api;
mod http_edge;
mod keys_api;
mod lifecycle;
mod openapi;
mod packages_api;
mod store_tokens;
mod tidy;

/// Counts live heap bytes so that streaming tests can assert flat memory.
#[global_allocator]
static ALLOCATOR: helpers::alloc::CountingAllocator = helpers::alloc::CountingAllocator;
