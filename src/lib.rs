//! Updraft: a firmware-over-the-air update service speaking OMA DM 1.2 and FUMO.
//!
//! See `ARCHITECTURE.md` for the map of these modules and the rules between them.

pub mod access;
pub mod blob;
pub mod builds;
pub mod campaign;
pub mod campaigns;
pub mod cli;
pub mod config;
pub mod devices;
pub mod dm;
pub mod dm_edge;
pub mod downloads;
pub mod firmware;
pub mod fumo;
pub mod http;
pub mod keys;
pub mod package;
pub mod selector;
pub mod simulator;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod updates;
