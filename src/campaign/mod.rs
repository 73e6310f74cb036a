//! Campaign planning, sans-IO: what a campaign is (`spec`), where it stands (`machine`), the
//! counts it decides on (`tally`), maintenance windows in device-local time (`window`), the
//! policy gates (`gates`) and the planner that turns state, counts, time and a bounded batch
//! of candidate devices into decisions (`planner`). The scheduler in `crate::campaigns` loads
//! the inputs from the store and applies the decisions.

pub mod gates;
pub mod machine;
pub mod planner;
pub mod spec;
pub mod tally;
pub mod window;

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

pub use gates::{Gate, PauseKind, PauseReason};
pub use machine::{CampaignState, Machine, WaveProgress, WaveState};
pub use planner::{Candidate, CohortReadiness, Decision, Input, plan};
pub use spec::{
    Delivery, Membership, Policy, Retries, Schedule, Spec, SpecError, Target, WaveSize,
};
pub use tally::{Cohort, MemberState, Tally};
pub use window::Window;
