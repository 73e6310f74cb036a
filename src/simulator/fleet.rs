//! The fleet file (TOML): groups of simulated devices that really update, each with its
//! identity, encoding, auth, limits, firmware image, capabilities, poll interval and failure
//! injection rates; and building the devices from it.
//!
//! With `--provision`, a group's devices are created with its `tags`, `groups` and
//! `timezone`, and with its manufacturer, model and firmware version as their declared
//! inventory (so that they can be selected before their first session).
//!
//! A fault with rate `r` hits the devices of a group whose deterministic draw (MD5 of group
//! name, device index and fault name, as a fraction) is below `r`, so a run is reproducible
//! and a rate of 0.25 over 8 devices hits close to 2 of them (exactly 0 at 0.0, all at 1.0).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::dm::Encoding;
use crate::dm::auth::AuthType;

use super::SimError;
use super::cli::{AuthArg, EncodingArg, derive_secret};
use super::device::{DeviceProfile, SimDevice};
use super::download::DownloadOptions;
use super::firmware::{Firmware, ImageCache};
use super::fumo::{Faults, FirmwareState};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetFile {
    #[serde(rename = "group")]
    pub groups: Vec<Group>,
}

/// One group of identical devices.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    pub count: usize,
    /// Device ids are this prefix followed by 1, 2, … (unique across groups).
    pub dev_id_prefix: String,
    #[serde(default = "default_man")]
    pub manufacturer: String,
    pub model: String,
    pub firmware_version: String,
    /// The image file the devices run, relative to the fleet file.
    pub image: PathBuf,
    /// The anti-rollback floor of that image (the firmware record's security version).
    #[serde(default)]
    pub security_version: u64,
    #[serde(default = "default_encoding")]
    pub encoding: EncodingArg,
    #[serde(default = "default_auth")]
    pub auth: AuthArg,
    /// Client secret; with `per_device_secrets` the base of [`derive_secret`].
    pub secret: String,
    /// SRVCRED secret (the server authenticates with md5, or hmac when `auth` is hmac).
    pub server_secret: String,
    #[serde(default)]
    pub per_device_secrets: bool,
    #[serde(default = "default_server_id")]
    pub server_id: String,
    #[serde(default = "default_max_msg")]
    pub max_msg_size: u64,
    #[serde(default = "default_max_obj")]
    pub max_obj_size: u64,
    /// false: the device has no PkgURL nodes and takes packages inline only.
    #[serde(default = "yes")]
    pub download: bool,
    /// false: no Update/PkgData node (URL only).
    #[serde(default = "yes")]
    pub inline: bool,
    /// Seconds between client-initiated sessions.
    #[serde(default = "default_poll")]
    pub poll_interval_secs: u64,
    /// Range request size of the device's downloads.
    #[serde(default = "default_chunk")]
    pub chunk_size: u64,
    #[serde(default = "default_reboot")]
    pub reboot_delay_ms: u64,
    #[serde(default)]
    pub faults: FaultRates,
    /// Key=value labels `--provision` gives the devices.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Static groups `--provision` puts the devices in.
    #[serde(default)]
    pub groups: Vec<String>,
    /// IANA time zone name `--provision` gives the devices (e.g. `Europe/Paris`).
    pub timezone: Option<String>,
}

/// Failure injection: the share of a group's devices (0.0-1.0) showing each failure.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRates {
    /// Download dropped mid-way (`drops` times, every `drop_after` bytes), then resumed.
    #[serde(default)]
    pub drop: f64,
    #[serde(default = "default_drop_after")]
    pub drop_after: u64,
    #[serde(default = "default_drops")]
    pub drops: u32,
    /// Corrupted bytes in the download (402).
    #[serde(default)]
    pub corrupt: f64,
    /// The device trusts a key the server does not sign with (404).
    #[serde(default)]
    pub wrong_key: f64,
    /// The user cancels (401).
    #[serde(default)]
    pub user_cancel: f64,
    /// The install fails with `install_failure_code`.
    #[serde(default)]
    pub install_failure: f64,
    #[serde(default = "default_install_code")]
    pub install_failure_code: u16,
    /// Reports 200 but comes back on the old image.
    #[serde(default)]
    pub fall_back: f64,
    /// Never sends the 1226 report.
    #[serde(default)]
    pub never_report: f64,
    /// Offline (no sessions, Package 0 lost) for `offline_secs` after its first session.
    #[serde(default)]
    pub offline: f64,
    #[serde(default = "default_offline_secs")]
    pub offline_secs: u64,
}

fn default_man() -> String {
    "Updraft".into()
}
fn default_encoding() -> EncodingArg {
    EncodingArg::Xml
}
fn default_auth() -> AuthArg {
    AuthArg::Md5
}
fn default_server_id() -> String {
    "updraft".into()
}
fn default_max_msg() -> u64 {
    16_384
}
fn default_max_obj() -> u64 {
    64 * 1024 * 1024
}
fn yes() -> bool {
    true
}
fn default_poll() -> u64 {
    60
}
fn default_chunk() -> u64 {
    256 * 1024
}
fn default_reboot() -> u64 {
    500
}
fn default_drop_after() -> u64 {
    64 * 1024
}
fn default_drops() -> u32 {
    1
}
fn default_install_code() -> u16 {
    410
}
fn default_offline_secs() -> u64 {
    60
}

/// The deterministic draw in [0, 1) for one device and one fault.
pub fn draw(group: &str, index: usize, fault: &str) -> f64 {
    use md5::Digest;
    let d = md5::Md5::digest(format!("{group}:{index}:{fault}").as_bytes());
    f64::from(u32::from_be_bytes([d[0], d[1], d[2], d[3]])) / 4_294_967_296.0
}

impl FaultRates {
    /// The faults device `index` of `group` shows, and its offline period.
    pub fn pick(&self, group: &str, index: usize) -> (Faults, Option<Duration>) {
        let hit = |name: &str, rate: f64| draw(group, index, name) < rate;
        let faults = Faults {
            drop_after: hit("drop", self.drop).then_some(self.drop_after),
            drops: self.drops,
            corrupt: hit("corrupt", self.corrupt),
            wrong_key: hit("wrong_key", self.wrong_key),
            user_cancel: hit("user_cancel", self.user_cancel),
            install_failure: hit("install_failure", self.install_failure)
                .then_some(self.install_failure_code),
            fall_back: hit("fall_back", self.fall_back),
            never_report: hit("never_report", self.never_report),
        };
        let offline = hit("offline", self.offline).then(|| Duration::from_secs(self.offline_secs));
        (faults, offline)
    }
}

impl FleetFile {
    pub fn parse(text: &str) -> Result<Self, SimError> {
        let fleet: Self = toml::from_str(text).map_err(|e| SimError::Config {
            reason: format!("fleet file: {e}"),
        })?;
        fleet.validate()?;
        Ok(fleet)
    }

    pub fn load(path: &Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path).map_err(|e| SimError::Config {
            reason: format!("fleet file {}: {e}", path.display()),
        })?;
        Self::parse(&text)
    }

    fn validate(&self) -> Result<(), SimError> {
        let bad = |reason: String| Err(SimError::Config { reason });
        let mut prefixes = Vec::new();
        for g in &self.groups {
            if g.count == 0 {
                return bad(format!("group {:?}: count must be at least 1", g.name));
            }
            if !g.download && !g.inline {
                return bad(format!("group {:?}: needs download or inline", g.name));
            }
            if g.max_msg_size < 1024 || g.chunk_size == 0 {
                return bad(format!(
                    "group {:?}: max_msg_size below 1024 or chunk_size 0",
                    g.name
                ));
            }
            let f = &g.faults;
            for (name, rate) in [
                ("drop", f.drop),
                ("corrupt", f.corrupt),
                ("wrong_key", f.wrong_key),
                ("user_cancel", f.user_cancel),
                ("install_failure", f.install_failure),
                ("fall_back", f.fall_back),
                ("never_report", f.never_report),
                ("offline", f.offline),
            ] {
                if !(0.0..=1.0).contains(&rate) {
                    return bad(format!("group {:?}: faults.{name} must be 0-1", g.name));
                }
            }
            if prefixes.iter().any(|p: &&str| {
                p.starts_with(g.dev_id_prefix.as_str()) || g.dev_id_prefix.starts_with(*p)
            }) {
                return bad(format!(
                    "group {:?}: dev_id_prefix {:?} overlaps another group's",
                    g.name, g.dev_id_prefix
                ));
            }
            prefixes.push(&g.dev_id_prefix);
        }
        Ok(())
    }
}

/// One device built from the fleet, with its group's run settings.
#[derive(Debug)]
pub struct FleetDevice {
    pub group: usize,
    pub device: SimDevice,
    pub poll_interval: Duration,
    pub offline: Option<Duration>,
    pub download: DownloadOptions,
    pub reboot_delay: Duration,
}

impl Group {
    fn profile(&self, n: usize) -> DeviceProfile {
        let dev_id = format!("{}{n}", self.dev_id_prefix);
        let secret = |s: &str| {
            if self.per_device_secrets {
                derive_secret(s, &dev_id)
            } else {
                s.to_owned()
            }
        };
        let mut p = DeviceProfile::new(dev_id.clone(), secret(&self.secret));
        p.encoding = match self.encoding {
            EncodingArg::Xml => Encoding::Xml,
            EncodingArg::Wbxml => Encoding::Wbxml,
        };
        p.auth = self.auth.into();
        p.server_id = self.server_id.clone();
        p.server_secret = secret(&self.server_secret);
        p.server_auth = Some(match p.auth {
            AuthType::Hmac => AuthType::Hmac,
            _ => AuthType::Md5,
        });
        p.max_msg_size = self.max_msg_size;
        p.max_obj_size = self.max_obj_size;
        p.man = self.manufacturer.clone();
        p.model = self.model.clone();
        p
    }
}

/// Builds every device of the fleet; images are read once per file and shared by digest.
pub fn build(
    fleet: &FleetFile,
    base_dir: &Path,
    cache: &Arc<ImageCache>,
) -> Result<Vec<FleetDevice>, SimError> {
    let mut images: HashMap<PathBuf, Vec<u8>> = HashMap::new();
    let mut out = Vec::new();
    for (gi, g) in fleet.groups.iter().enumerate() {
        let path = base_dir.join(&g.image);
        if !images.contains_key(&path) {
            let bytes = std::fs::read(&path).map_err(|e| SimError::Config {
                reason: format!("group {:?}: image {}: {e}", g.name, path.display()),
            })?;
            images.insert(path.clone(), bytes);
        }
        let mut running = Firmware::new(g.firmware_version.clone(), cache, images[&path].clone());
        running.security_version = g.security_version;
        for n in 1..=g.count {
            let (faults, offline) = g.faults.pick(&g.name, n);
            let mut state = FirmwareState::new(running.clone());
            state.faults = faults;
            let mut device = SimDevice::with_firmware(g.profile(n), state);
            device.remove_fumo_capabilities(g.download, g.inline);
            out.push(FleetDevice {
                group: gi,
                device,
                poll_interval: Duration::from_secs(g.poll_interval_secs.max(1)),
                offline,
                download: DownloadOptions {
                    chunk_size: g.chunk_size,
                    max_bytes: g.max_obj_size,
                    ..DownloadOptions::default()
                },
                reboot_delay: Duration::from_millis(g.reboot_delay_ms),
            });
        }
    }
    Ok(out)
}
