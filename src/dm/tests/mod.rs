//! Cross-module tests: brief section 10 vectors, captured device messages, one test per brief
//! section 9 trap, golden engine conversations and property tests.

mod auth_flows;
mod engine;
mod golden;
mod groups;
mod lifecycle;
mod lo_sim;
mod props;
mod split;
mod traps;
mod vectors;
