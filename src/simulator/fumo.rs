//! FUMO jobs on a device that really updates (brief 5.3-5.6): Exec answers 202 and queues a
//! job; [`run_pending`] then downloads the PkgURL (or takes the PkgData the server wrote),
//! verifies and applies the package against the running image, "reboots" into it, and
//! leaves the Generic Alert 1226 with the Exec's Correlator for the next session.
//!
//! The device lock is held only for the short state changes, never across the download or
//! the reboot delay, so the Package 0 listener and the DM session stay responsive.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::package::KeyRing;

use super::device::{PendingAlert, SimDevice, fumo_alert_type};
use super::download::{DownloadOptions, download};
use super::firmware::{Firmware, ImageCache, Refused, Trust, install, result};

/// The FUMO node an Exec targeted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FumoOp {
    Download,
    Update,
    DownloadAndUpdate,
}

impl FumoOp {
    pub fn from_node(name: &str) -> Option<Self> {
        match name {
            "Download" => Some(Self::Download),
            "Update" => Some(Self::Update),
            "DownloadAndUpdate" => Some(Self::DownloadAndUpdate),
            _ => None,
        }
    }

    pub fn node(self) -> &'static str {
        match self {
            Self::Download => "Download",
            Self::Update => "Update",
            Self::DownloadAndUpdate => "DownloadAndUpdate",
        }
    }
}

/// An accepted Exec the device still has to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FumoJob {
    pub op: FumoOp,
    pub correlator: Option<String>,
    /// The PkgURL at Exec time (Download, DownloadAndUpdate).
    pub url: Option<String>,
}

/// Failures a device of a fleet group shows (decided per device when the fleet is built).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Drop the download after this many bytes, `drops` times; the device resumes with Range.
    pub drop_after: Option<u64>,
    pub drops: u32,
    /// Flip bytes of the downloaded package (the device then reports 402).
    pub corrupt: bool,
    /// The device trusts a key the server never signs with (it reports 404).
    pub wrong_key: bool,
    /// The user cancels the download (401).
    pub user_cancel: bool,
    /// The install fails with this code.
    pub install_failure: Option<u16>,
    /// Reports 200 after the reboot but comes back on the old image.
    pub fall_back: bool,
    /// Never sends the Generic Alert.
    pub never_report: bool,
}

/// The firmware side of a device: what it runs, what it has staged, the queued job.
#[derive(Debug, Clone)]
pub struct FirmwareState {
    pub running: Firmware,
    /// A package downloaded by Exec Download or written to Update/PkgData, awaiting Exec Update.
    pub staged_package: Option<Vec<u8>>,
    pub job: Option<FumoJob>,
    pub faults: Faults,
}

impl FirmwareState {
    pub fn new(running: Firmware) -> Self {
        Self {
            running,
            staged_package: None,
            job: None,
            faults: Faults::default(),
        }
    }
}

/// What the device needs from outside to run jobs.
#[derive(Debug, Clone)]
pub struct FumoEnv {
    pub client: reqwest::Client,
    /// The server's active public keys.
    pub keys: KeyRing,
    pub cache: Arc<ImageCache>,
    pub download: DownloadOptions,
    /// How long the "reboot" into the new image takes.
    pub reboot_delay: Duration,
}

/// What became of one job, as the device saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutcome {
    pub op: FumoOp,
    pub correlator: Option<String>,
    pub result_code: u16,
    pub reason: Option<String>,
    pub wire_bytes: u64,
    pub resumes: u32,
    /// `./DevDetail/FwV` after the job.
    pub version: String,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Flips a few bytes near the end (in the payload, past header and manifest).
fn corrupt(bytes: &mut [u8]) {
    let n = bytes.len();
    for i in [n / 2, n * 3 / 4, n.saturating_sub(1)] {
        if let Some(b) = bytes.get_mut(i) {
            *b ^= 0x5a;
        }
    }
}

impl SimDevice {
    /// Drops the FUMO nodes of a mechanism the device lacks (brief 5.1: a device supports at
    /// least one): no `Download`/`DownloadAndUpdate` without `download`, no `Update/PkgData`
    /// without `inline` (Exec Update stays, for the two-step flow).
    pub fn remove_fumo_capabilities(&mut self, download: bool, inline: bool) {
        let fumo = self.profile.fumo_uri();
        if !download {
            self.tree.remove(&format!("{fumo}/Download"));
            self.tree.remove(&format!("{fumo}/DownloadAndUpdate"));
        }
        if !inline {
            self.tree.remove(&format!("{fumo}/Update/PkgData"));
        }
    }

    /// Exec on a FUMO node of a device holding firmware (brief 5.3): checks that there is
    /// something to do, queues the job and answers 202; the work happens in [`run_pending`].
    pub(crate) fn queue_fumo_job(&mut self, op: FumoOp, correlator: Option<&str>) -> u16 {
        let fumo = self.profile.fumo_uri();
        let state = self.tree.text(&format!("{fumo}/State")).unwrap_or_default();
        let Some(fw) = self.firmware.as_mut() else {
            return 405;
        };
        // One job at a time: a second Exec while one runs is not allowed.
        if fw.job.is_some() {
            return 405;
        }
        let url = match op {
            FumoOp::Update => {
                if state.trim() != "50" || fw.staged_package.is_none() {
                    return 405;
                }
                None
            }
            _ => {
                let url = self
                    .tree
                    .text(&format!("{fumo}/{}/PkgURL", op.node()))
                    .unwrap_or_default();
                if url.trim().is_empty() {
                    return 405;
                }
                Some(url.trim().to_owned())
            }
        };
        fw.job = Some(FumoJob {
            op,
            correlator: correlator.map(str::to_owned),
            url,
        });
        let progressing = if op == FumoOp::Update { "60" } else { "30" };
        self.tree.force_value(&format!("{fumo}/State"), progressing);
        202
    }

    fn set_state(&mut self, state: &str) {
        let uri = format!("{}/State", self.profile.fumo_uri());
        self.tree.force_value(&uri, state);
    }

    fn report(&mut self, job: &FumoJob, code: u16) {
        let never = self
            .firmware
            .as_ref()
            .is_some_and(|f| f.faults.never_report);
        if !never {
            self.pending_alerts.push(PendingAlert {
                correlator: job.correlator.clone(),
                source: self.profile.fumo_uri(),
                alert_type: fumo_alert_type(job.op.node()),
                result_code: code,
            });
        }
    }
}

/// Runs the device's queued FUMO job, if any, to its end (download, install, reboot) and
/// leaves the report in `pending_alerts`. Returns what happened, or `None` without a job.
pub async fn run_pending(dev: &Mutex<SimDevice>, env: &FumoEnv) -> Option<JobOutcome> {
    let (job, running, staged, faults, trust) = {
        let mut d = dev.lock().await;
        let fw = d.firmware.as_mut()?;
        let job = fw.job.clone()?;
        let keys = if fw.faults.wrong_key {
            // A ring with a key no server signs with: every package fails validation.
            KeyRing::new([crate::package::SecretKey::from_seed([0xee; 32]).public()])
        } else {
            env.keys.clone()
        };
        let trust = Trust {
            keys,
            manufacturer: d.profile.man.clone(),
            model: d.profile.model.clone(),
        };
        let fw = d.firmware.as_ref()?;
        (
            job,
            fw.running.clone(),
            fw.staged_package.clone(),
            fw.faults.clone(),
            trust,
        )
    };
    let mut outcome = JobOutcome {
        op: job.op,
        correlator: job.correlator.clone(),
        result_code: result::SUCCESS,
        reason: None,
        wire_bytes: 0,
        resumes: 0,
        version: running.version.clone(),
    };
    let package = match (&job.url, staged) {
        (Some(url), _) => {
            let mut opts = env.download.clone();
            if faults.drop_after.is_some() {
                opts.drop_after = faults.drop_after;
                opts.drops = faults.drops;
            }
            if faults.user_cancel {
                Err(Refused {
                    code: result::USER_CANCELLED,
                    reason: "the user cancelled the download".into(),
                })
            } else {
                match download(&env.client, url, &opts).await {
                    Ok(got) => {
                        outcome.wire_bytes = got.wire_bytes;
                        outcome.resumes = got.resumes;
                        let mut bytes = got.bytes;
                        if faults.corrupt {
                            corrupt(&mut bytes);
                        }
                        Ok(bytes)
                    }
                    Err(e) => {
                        outcome.wire_bytes = e.wire_bytes;
                        Err(Refused {
                            code: e.code,
                            reason: e.reason,
                        })
                    }
                }
            }
        }
        (None, Some(bytes)) => Ok(bytes),
        (None, None) => Err(Refused {
            code: 405,
            reason: "nothing to install".into(),
        }),
    };
    let package = match package {
        Ok(p) => p,
        Err(r) => {
            let mut d = dev.lock().await;
            d.set_state("20");
            return Some(finish(&mut d, &job, outcome, r));
        }
    };
    if job.op == FumoOp::Download {
        let mut d = dev.lock().await;
        if let Some(fw) = d.firmware.as_mut() {
            fw.staged_package = Some(package);
        }
        d.set_state("50");
        d.report(&job, result::SUCCESS);
        if let Some(fw) = d.firmware.as_mut() {
            fw.job = None;
        }
        return Some(outcome);
    }
    let installed = match faults.install_failure {
        Some(code) => Err(Refused {
            code,
            reason: "injected install failure".into(),
        }),
        None => {
            let cache = env.cache.clone();
            let now = unix_now();
            tokio::task::spawn_blocking(move || install(&running, &package, &trust, now, &cache))
                .await
                .unwrap_or_else(|e| {
                    Err(Refused {
                        code: result::UPDATE_FAILED,
                        reason: e.to_string(),
                    })
                })
        }
    };
    let new = match installed {
        Ok(new) => new,
        Err(r) => {
            let mut d = dev.lock().await;
            let state = if job.op == FumoOp::Update { "70" } else { "80" };
            d.set_state(state);
            return Some(finish(&mut d, &job, outcome, r));
        }
    };
    tokio::time::sleep(env.reboot_delay).await;
    let mut d = dev.lock().await;
    // Rebooted: into the new image, or (fault) back into the old one while still reporting
    // success, the way a device whose boot loader fell back does.
    if !faults.fall_back {
        d.tree.force_value("./DevDetail/FwV", new.version.as_str());
        outcome.version = new.version.clone();
        if let Some(fw) = d.firmware.as_mut() {
            fw.running = new;
        }
    }
    let state = if job.op == FumoOp::Update {
        "90"
    } else {
        "100"
    };
    d.set_state(state);
    if let Some(fw) = d.firmware.as_mut() {
        fw.staged_package = None;
        fw.job = None;
    }
    d.report(&job, result::SUCCESS);
    Some(outcome)
}

fn finish(d: &mut SimDevice, job: &FumoJob, mut outcome: JobOutcome, r: Refused) -> JobOutcome {
    d.report(job, r.code);
    if let Some(fw) = d.firmware.as_mut() {
        fw.job = None;
        fw.staged_package = None;
    }
    outcome.result_code = r.code;
    outcome.reason = Some(r.reason);
    outcome
}
