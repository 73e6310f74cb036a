//! The device simulator (`updraft simulate`): simulated OMA DM 1.2 clients with a DM tree and
//! FUMO, talking to the server over real HTTP in XML or WBXML.
//!
//! Architecture invariant: the simulator implements the **client** side on its own. It uses
//! `dm`'s codec, message types, auth formulas and Package 0 parsing, but never the server
//! session engine (`dm::session`) or the server's Large Object planner, so a server mistake is
//! not mirrored by the simulator but reported (`SessionReport::errors`). Tests are the one
//! place where `dm::session` appears: as the peer under test.
//!
//! Codemap: `device`/`tree` (state), `firmware` (images, keys, install and its result codes),
//! `fumo` + `download` (FUMO jobs: Range download, apply, reboot, report), `session` + `commands` + `pack` + `server_auth` +
//! `quirks` + `objects` (the client state machine), `package0`/`push` (notifications), `transport`
//! (HTTP), `http1` (a tiny HTTP/1.1 reader for the push listener), `cli` (`run`).

mod cli;
mod commands;
mod device;
mod download;
mod error;
mod firmware;
pub(crate) mod fleet;
mod fleet_run;
mod fumo;
mod http1;
mod objects;
mod pack;
mod package0;
mod push;
mod quirks;
mod server_auth;
mod session;
mod transport;
mod tree;

pub use cli::{
    AuthArg, DeviceSummary, EncodingArg, SimulateArgs, Summary, derive_secret, profiles, run,
    run_with,
};
pub use device::{DeviceProfile, PendingAlert, SimDevice, fumo_alert_type};
pub use download::{DownloadFailed, DownloadOptions, Downloaded, download};
pub use error::SimError;
pub use firmware::{
    Firmware, ImageCache, PublishedKey, Refused, Trust, fetch_keys, install, result_code,
    trusted_keys,
};
pub use fleet::{FaultRates, FleetDevice, FleetFile, Group};
pub use fleet_run::{FleetRun, FleetSummary, GroupSummary, JobSeen, run_fleet};
pub use fumo::{Faults, FirmwareState, FumoEnv, FumoJob, FumoOp, JobOutcome, run_pending};
pub use package0::{NonceCandidate, NotificationError};
pub use push::{PushEvent, PushTarget, serve_http_push, serve_udp_push};
pub use quirks::ServerAuthQuirk;
pub use session::{ClientSession, Initiation, SessionOptions, SessionReport, run_session};
pub use transport::{HMAC_HEADER, HttpReply, HttpRequest, HttpTransport, Transport};
pub use tree::{Access, DmTree, Node, NodeKind, NodeValue};

#[cfg(test)]
mod tests;
