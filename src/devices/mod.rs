//! Devices as the service provisions and labels them: a provisioning request checked into
//! the store's rows (`provision.rs`), the bounds of tags, groups and time zones
//! (`labels.rs`), and the streamed bulk import (`import/`).

pub mod import;
pub mod labels;
pub mod provision;
