//! Firmware delivery through FUMO (brief 5), sans-IO: which package a device gets, how its
//! update job moves from one state to the next on the facts of its sessions and on time, how
//! FUMO result codes are classified, where the FUMO node is, and which DM commands deliver a
//! package. The edges (`dm_edge`, the update worker, the API) load jobs, feed them events,
//! and apply the actions they return.

pub mod commands;
pub mod discover;
pub mod job;
pub mod result_code;
pub mod select;
pub mod vocabulary;

#[cfg(test)]
mod tests;

pub use job::{Job, JobState};
pub use result_code::{Classification, Verdict, classify};
pub use select::{Candidate, Choice, PackageKind, Reported, Target, choose};
pub use vocabulary::{Action, Event, Mode, Policy, Purpose, Stage, Step, Transition};
