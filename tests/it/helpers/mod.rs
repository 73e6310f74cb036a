//! Shared test helpers: fresh databases, a spawned app, the S3 test server, memory accounting,
//! and waiting for an event with a deadline.

pub mod alloc;
pub mod app;
pub mod database;
pub mod firmware;
pub mod process;
pub mod s3;
pub mod slow_gateway;
pub mod wait;

pub use app::{TestApp, spawn_app, spawn_app_with, spawn_replica};
pub use database::{TestDatabase, fresh_database};
pub use wait::{wait_for, wait_until_blocking};

/// Every test that builds an HTTP client needs the TLS provider installed first.
pub fn http_client() -> reqwest::Client {
    updraft::startup::install_tls_provider();
    reqwest::Client::new()
}

/// True under CI, where a missing required service is a failure, not a skip.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}
