//! `SimDevice`: one simulated handset: its profile, DM tree, nonces, FUMO jobs and the Generic
//! Alerts it still owes the server.

use crate::dm::Encoding;
use crate::dm::auth::{AuthType, CredentialHash, Nonce, md5_b64};
use crate::dm::message::StatusCode;

use super::fumo::{FirmwareState, FumoOp};
use super::quirks::ServerAuthQuirk;
use super::tree::{Access, DmTree};

/// Everything that makes one simulated device: identity, DM account, limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceProfile {
    /// DevInfo/DevId, also `Source/LocURI` of every message.
    pub dev_id: String,
    pub man: String,
    pub model: String,
    pub fw_version: String,
    pub sw_version: String,
    pub hw_version: String,
    pub lang: String,
    pub encoding: Encoding,
    /// How the device authenticates to the server (CLCRED).
    pub auth: AuthType,
    /// CLCRED AAuthName, sent in `SyncHdr/Source/LocName`.
    pub client_name: String,
    pub client_secret: String,
    /// The DMAcc ServerID; also the SRVCRED name and the Package 0 server identifier.
    pub server_id: String,
    /// SRVCRED AAuthSecret (server credentials and Package 0 digests).
    pub server_secret: String,
    /// How the server must authenticate to us; `None` = server credentials are not checked.
    pub server_auth: Option<AuthType>,
    /// The largest message we accept (advertised as `MaxMsgSize`).
    pub max_msg_size: u64,
    /// The largest object we accept (advertised as `MaxObjSize`).
    pub max_obj_size: u64,
    /// `./DevDetail/LrgObj`.
    pub large_objects: bool,
    /// The FUMO node name `<x>` under `./FUMO`.
    pub fumo_node: String,
    /// The result code reported for every FUMO job (brief 5.5; 200 = success).
    pub fumo_result: u16,
    /// How the device keeps its nonces (libdmclient forgets them, see [`ServerAuthQuirk`]).
    pub server_auth_quirk: ServerAuthQuirk,
}

impl DeviceProfile {
    /// A profile with common defaults: XML, md5 both ways off for the server, 16 KiB messages,
    /// 8 MiB objects, Large Objects on, FUMO node `fw1`, result 200.
    pub fn new(dev_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        let dev_id = dev_id.into();
        Self {
            client_name: dev_id.clone(),
            dev_id,
            man: "Updraft".into(),
            model: "SIM-1".into(),
            fw_version: "1.0.0".into(),
            sw_version: "1.0".into(),
            hw_version: "A".into(),
            lang: "en-US".into(),
            encoding: Encoding::Xml,
            auth: AuthType::Md5,
            client_secret: client_secret.into(),
            server_id: "updraft".into(),
            server_secret: String::new(),
            server_auth: None,
            max_msg_size: 16_384,
            max_obj_size: 8 * 1024 * 1024,
            large_objects: true,
            fumo_node: "fw1".into(),
            fumo_result: 200,
            server_auth_quirk: ServerAuthQuirk::None,
        }
    }

    pub fn fumo_uri(&self) -> String {
        format!("./FUMO/{}", self.fumo_node)
    }
}

/// A Generic Alert (1226) the device will send in its next session (brief 5.5-5.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAlert {
    pub correlator: Option<String>,
    /// `Item/Source/LocURI`: the FUMO object `<x>` (spec form).
    pub source: String,
    /// e.g. `org.openmobilealliance.dm.firmwareupdate.downloadandupdate`.
    pub alert_type: String,
    pub result_code: u16,
}

/// The Generic Alert type for an Exec'd FUMO node (brief 5.5).
pub fn fumo_alert_type(exec_node: &str) -> String {
    let op = match exec_node {
        "Download" => "download",
        "Update" => "update",
        _ => "downloadandupdate",
    };
    format!("org.openmobilealliance.dm.firmwareupdate.{op}")
}

/// One simulated device. Owns its state across sessions; sessions borrow it mutably.
#[derive(Debug, Clone)]
pub struct SimDevice {
    pub profile: DeviceProfile,
    pub tree: DmTree,
    /// The nonce the server gave us (device → server md5/HMAC); `None` until the first Chal.
    pub client_nonce: Option<Nonce>,
    /// The nonce we gave the server (server → device credentials and Package 0). Starts at
    /// the resynchronisation default of 4 zero bytes (brief 2.5), or empty for a device with
    /// the libdmclient quirk.
    pub server_nonce: Nonce,
    /// Generic Alerts owed to the server; removed when the server answers 200/202.
    pub pending_alerts: Vec<PendingAlert>,
    /// Set by [`accept_notification`](Self::accept_notification): the session id for Alert
    /// 1200 of the next session.
    pub pending_notification: Option<u16>,
    /// The firmware the device runs, for a device that really updates (see `fumo`). Without
    /// it, Exec is scripted: it "runs" at once and reports `profile.fumo_result`.
    pub firmware: Option<FirmwareState>,
    /// Switched off (fault injection): Package 0 is lost, no sessions.
    pub offline: bool,
    sessions_started: u32,
    nonces_issued: u64,
}

impl SimDevice {
    pub fn new(profile: DeviceProfile) -> Self {
        let tree = initial_tree(&profile);
        let server_nonce = profile.server_auth_quirk.initial_server_nonce();
        Self {
            profile,
            tree,
            client_nonce: None,
            server_nonce,
            pending_alerts: Vec::new(),
            pending_notification: None,
            firmware: None,
            offline: false,
            sessions_started: 0,
            nonces_issued: 0,
        }
    }

    /// A device that runs `firmware`: `./DevDetail/FwV` is its version, and FUMO Execs
    /// download, verify, apply and reboot for real (see `fumo::run_pending`).
    pub fn with_firmware(mut profile: DeviceProfile, firmware: FirmwareState) -> Self {
        profile.fw_version = firmware.running.version.clone();
        let mut d = Self::new(profile);
        d.firmware = Some(firmware);
        d
    }

    /// A fresh 16-byte nonce for the server. Deterministic per device (MD5 of the DevId and a
    /// counter): the simulator needs unpredictability by the server only as far as the
    /// server must not reuse old ones, and reproducible runs matter more.
    pub fn issue_server_nonce(&mut self) -> Nonce {
        let n = self.fresh_nonce();
        self.server_nonce = n.clone();
        n
    }

    /// A new nonce without adopting it (see [`issue_server_nonce`](Self::issue_server_nonce)).
    pub(crate) fn fresh_nonce(&mut self) -> Nonce {
        self.nonces_issued += 1;
        let seed = format!("{}:{}:srv-nonce", self.profile.dev_id, self.nonces_issued);
        let mut b = md5_b64(seed.as_bytes()).into_bytes();
        b.truncate(16);
        Nonce(b)
    }

    /// The next client-chosen SessionID (decimal, 1, 2, …).
    pub(crate) fn next_session_id(&mut self) -> String {
        self.sessions_started += 1;
        self.sessions_started.to_string()
    }

    pub fn client_hash(&self) -> CredentialHash {
        CredentialHash::compute(&self.profile.client_name, &self.profile.client_secret)
    }

    pub fn server_hash(&self) -> CredentialHash {
        CredentialHash::compute(&self.profile.server_id, &self.profile.server_secret)
    }

    /// Exec on a FUMO node (brief 5.3): 202 and a Generic Alert for the next session. The
    /// job "runs" at once: the State moves to its end state and, on success of an update,
    /// `./DevDetail/FwV` becomes the package version.
    pub fn exec(&mut self, uri: &str, correlator: Option<&str>) -> StatusCode {
        let uri = crate::dm::message::normalize_uri(uri);
        if let Err(code) = self.tree.check_exec(&uri) {
            return code;
        }
        let fumo = self.profile.fumo_uri();
        let Some(op) = uri.strip_prefix(&format!("{fumo}/")) else {
            return StatusCode::COMMAND_NOT_ALLOWED;
        };
        if self.firmware.is_some() {
            return match FumoOp::from_node(op) {
                Some(op) => StatusCode(self.queue_fumo_job(op, correlator)),
                None => StatusCode::COMMAND_NOT_ALLOWED,
            };
        }
        let state_uri = format!("{fumo}/State");
        let state = self.tree.text(&state_uri).unwrap_or_default();
        let ok = (200..300).contains(&self.profile.fumo_result);
        let new_state = match op {
            "Download" | "DownloadAndUpdate" => {
                let url = self
                    .tree
                    .text(&format!("{fumo}/{op}/PkgURL"))
                    .unwrap_or_default();
                // Nothing to download from (brief 5.3 lists 405 for "nothing to do").
                if url.trim().is_empty() {
                    return StatusCode::COMMAND_NOT_ALLOWED;
                }
                match (op, ok) {
                    ("Download", true) => "50",
                    ("Download", false) => "20",
                    (_, true) => "100",
                    (_, false) => "80",
                }
            }
            "Update" => {
                // Update needs a package: state 50 after Download or a PkgData Replace.
                if state.trim() != "50" {
                    return StatusCode::COMMAND_NOT_ALLOWED;
                }
                if ok { "90" } else { "70" }
            }
            _ => return StatusCode::COMMAND_NOT_ALLOWED,
        };
        self.tree.force_value(&state_uri, new_state);
        if ok && op != "Download" {
            let version = self
                .tree
                .text(&format!("{fumo}/PkgVersion"))
                .unwrap_or_default();
            if !version.trim().is_empty() {
                self.tree.force_value("./DevDetail/FwV", version.trim());
            }
        }
        self.pending_alerts.push(PendingAlert {
            correlator: correlator.map(str::to_owned),
            source: fumo,
            alert_type: fumo_alert_type(op),
            result_code: self.profile.fumo_result,
        });
        StatusCode::ACCEPTED
    }

    /// Called after a Replace landed in the tree: keeps the device's own state in step
    /// (PkgData ⇒ State 50; a new AAuthSecret replaces the secret).
    pub(crate) fn after_write(&mut self, uri: &str) {
        let fumo = self.profile.fumo_uri();
        if uri == format!("{fumo}/Update/PkgData") {
            self.tree.force_value(&format!("{fumo}/State"), "50");
            // The package now lives with the firmware state (the leaf itself is Replace-only).
            let data = self.tree.value(uri).map(<[u8]>::to_vec);
            if let (Some(fw), Some(data)) = (self.firmware.as_mut(), data) {
                fw.staged_package = Some(data);
                self.tree.force_value(uri, Vec::new());
            }
        }
        let acc = format!("./DMAcc/{}/AppAuth", self.profile.server_id);
        if uri == format!("{acc}/srv/AAuthSecret")
            && let Some(s) = self.tree.text(uri)
        {
            self.profile.server_secret = s;
        }
        if uri == format!("{acc}/cli/AAuthSecret")
            && let Some(s) = self.tree.text(uri)
        {
            self.profile.client_secret = s;
        }
    }
}

fn auth_type_name(a: AuthType) -> &'static str {
    match a {
        AuthType::Basic => "BASIC",
        AuthType::Md5 => "DIGEST",
        AuthType::Hmac => "HMAC",
    }
}

/// DevInfo, DevDetail, DMAcc (DM 1.2 w7 layout) and one FUMO object (brief 5.1).
fn initial_tree(p: &DeviceProfile) -> DmTree {
    let ro = Access::READ_ONLY;
    let mut t = DmTree::new();
    for root in ["./DevInfo", "./DevDetail", "./DMAcc", "./FUMO"] {
        t.set_interior(root, None, ro);
    }
    t.set_leaf("./DevInfo/DevId", "chr", p.dev_id.as_str(), ro);
    t.set_leaf("./DevInfo/Man", "chr", p.man.as_str(), ro);
    t.set_leaf("./DevInfo/Mod", "chr", p.model.as_str(), ro);
    t.set_leaf("./DevInfo/DmV", "chr", "1.2", ro);
    t.set_leaf("./DevInfo/Lang", "chr", p.lang.as_str(), ro);
    t.set_leaf("./DevDetail/DevTyp", "chr", "phone", ro);
    t.set_leaf("./DevDetail/OEM", "chr", p.man.as_str(), ro);
    t.set_leaf("./DevDetail/FwV", "chr", p.fw_version.as_str(), ro);
    t.set_leaf("./DevDetail/SwV", "chr", p.sw_version.as_str(), ro);
    t.set_leaf("./DevDetail/HwV", "chr", p.hw_version.as_str(), ro);
    let lrg = if p.large_objects { "true" } else { "false" };
    t.set_leaf("./DevDetail/LrgObj", "bool", lrg, ro);
    t.set_leaf("./DevDetail/URI/MaxDepth", "int", "0", ro);
    t.set_leaf("./DevDetail/URI/MaxTotLen", "int", "0", ro);
    t.set_leaf("./DevDetail/URI/MaxSegLen", "int", "0", ro);
    t.set_interior("./DevDetail/URI", None, ro);
    t.set_interior("./DevDetail/Ext", None, ro);

    let acc = format!("./DMAcc/{}", p.server_id);
    t.set_interior(
        &acc,
        Some("org.openmobilealliance/1.0/w7"),
        Access::READ_ONLY,
    );
    t.set_leaf(&format!("{acc}/AppID"), "chr", "w7", ro);
    t.set_leaf(&format!("{acc}/ServerID"), "chr", p.server_id.as_str(), ro);
    t.set_leaf(&format!("{acc}/Name"), "chr", p.server_id.as_str(), ro);
    t.set_leaf(&format!("{acc}/AppAddr/srv/AddrType"), "chr", "URI", ro);
    t.set_leaf(
        &format!("{acc}/AppAddr/srv/Addr"),
        "chr",
        "",
        Access::DYNAMIC,
    );
    for (slot, level, auth, name, secret) in [
        (
            "cli",
            "CLCRED",
            Some(p.auth),
            p.client_name.as_str(),
            p.client_secret.as_str(),
        ),
        (
            "srv",
            "SRVCRED",
            p.server_auth,
            p.server_id.as_str(),
            p.server_secret.as_str(),
        ),
    ] {
        let base = format!("{acc}/AppAuth/{slot}");
        t.set_leaf(&format!("{base}/AAuthLevel"), "chr", level, ro);
        let ty = auth.map_or("", auth_type_name);
        t.set_leaf(&format!("{base}/AAuthType"), "chr", ty, Access::DYNAMIC);
        t.set_leaf(&format!("{base}/AAuthName"), "chr", name, Access::DYNAMIC);
        t.set_leaf(
            &format!("{base}/AAuthSecret"),
            "chr",
            secret,
            Access::WRITE_ONLY,
        );
    }

    let f = p.fumo_uri();
    let rw = Access {
        delete: false,
        ..Access::DYNAMIC
    };
    t.set_interior(&f, Some("urn:oma:mo:oma-fumo:1.0"), ro);
    // PkgName/PkgVersion are Get-only in the spec; accepted for writing here because servers
    // commonly set them before an update (documented leniency).
    t.set_leaf(&format!("{f}/PkgName"), "chr", "", rw);
    t.set_leaf(&format!("{f}/PkgVersion"), "chr", "", rw);
    t.set_interior(&format!("{f}/Download"), None, Access::EXEC);
    t.set_leaf(&format!("{f}/Download/PkgURL"), "chr", "", rw);
    t.set_interior(&format!("{f}/Update"), None, Access::EXEC);
    t.set_leaf(&format!("{f}/Update/PkgData"), "bin", Vec::new(), rw);
    t.set_interior(&format!("{f}/DownloadAndUpdate"), None, Access::EXEC);
    t.set_leaf(&format!("{f}/DownloadAndUpdate/PkgURL"), "chr", "", rw);
    t.set_leaf(&format!("{f}/State"), "int", "10", ro);
    t.set_interior(&format!("{f}/Ext"), None, ro);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_tree_and_fumo_exec() {
        let mut d = SimDevice::new(DeviceProfile::new("IMEI:1", "s"));
        assert_eq!(d.tree.text("./DevInfo/DmV").as_deref(), Some("1.2"));
        assert_eq!(d.tree.text("./DevDetail/LrgObj").as_deref(), Some("true"));
        assert_eq!(
            d.tree.get("./DMAcc/updraft/AppAuth/cli/AAuthSecret"),
            Err(StatusCode::PERMISSION_DENIED)
        );
        // No PkgURL yet: nothing to download.
        assert_eq!(
            d.exec("./FUMO/fw1/DownloadAndUpdate", Some("c1")),
            StatusCode::COMMAND_NOT_ALLOWED
        );
        assert_eq!(
            d.exec("./FUMO/fw1/PkgName", None),
            StatusCode::COMMAND_NOT_ALLOWED
        );
        assert_eq!(
            d.exec("./FUMO/fw1/Update", None),
            StatusCode::COMMAND_NOT_ALLOWED
        );
        d.tree
            .replace(
                "./FUMO/fw1/DownloadAndUpdate/PkgURL",
                "chr",
                None,
                b"http://x/fw".to_vec(),
            )
            .unwrap();
        d.tree
            .replace("./FUMO/fw1/PkgVersion", "chr", None, b"2.0.0".to_vec())
            .unwrap();
        assert_eq!(
            d.exec("FUMO/fw1/DownloadAndUpdate", Some("c1")),
            StatusCode::ACCEPTED
        );
        assert_eq!(d.tree.text("./FUMO/fw1/State").as_deref(), Some("100"));
        assert_eq!(d.tree.text("./DevDetail/FwV").as_deref(), Some("2.0.0"));
        assert_eq!(
            d.pending_alerts,
            vec![PendingAlert {
                correlator: Some("c1".into()),
                source: "./FUMO/fw1".into(),
                alert_type: "org.openmobilealliance.dm.firmwareupdate.downloadandupdate".into(),
                result_code: 200,
            }]
        );
        let n1 = d.issue_server_nonce();
        let n2 = d.issue_server_nonce();
        assert_ne!(n1, n2);
        assert_eq!(d.server_nonce, n2);
        assert_eq!(n1.0.len(), 16);
    }
}
