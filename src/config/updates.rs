//! `[updates]`: how update jobs deliver firmware through FUMO, retry, and give up.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpdatesConfig {
    /// After an Exec is accepted, how long the Generic Alert report may take before the device
    /// is notified again and its FUMO State read.
    pub report_timeout_secs: u64,
    /// Backoff before the first retry of a transient failure; doubled per attempt…
    pub retry_base_secs: u64,
    /// …up to this.
    pub retry_cap_secs: u64,
    /// Attempts per job (the first one included) before a transient failure is final.
    pub max_attempts: u32,
    /// Deadline of a job created without one.
    pub default_deadline_secs: u64,
    /// Where FUMO nodes are looked for (`Get <root>?list=Struct`) on a device whose model has
    /// no configured node: the locations real devices use (brief 5.1).
    pub fumo_roots: Vec<String>,
    /// Per-model delivery settings.
    pub models: Vec<ModelProfile>,
    /// How often the worker looks for due jobs (retries, report chases, deadlines).
    pub tick_ms: u64,
}

impl Default for UpdatesConfig {
    fn default() -> Self {
        UpdatesConfig {
            report_timeout_secs: 3600,
            retry_base_secs: 60,
            retry_cap_secs: 3600,
            max_attempts: 3,
            default_deadline_secs: 7 * 24 * 3600,
            fumo_roots: vec![
                "./FUMO".into(),
                "./FwUpdate".into(),
                "./DevDetail/Ext/Software/FwUpdate".into(),
            ],
            models: Vec::new(),
            tick_ms: 1000,
        }
    }
}

/// What is known about one device model's FUMO client.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ModelProfile {
    /// `./DevInfo/Man`; any manufacturer when absent.
    pub manufacturer: Option<String>,
    /// `./DevInfo/Mod`.
    pub model: String,
    /// The FUMO node (`./FUMO/fw1`); discovered when absent.
    pub fumo_node: Option<String>,
    /// The device can download a PkgURL itself; `false` makes `auto` deliver inline.
    #[serde(default = "yes")]
    pub can_download: bool,
    /// Download then Update as two Execs, instead of DownloadAndUpdate.
    #[serde(default)]
    pub two_step: bool,
}

fn yes() -> bool {
    true
}

impl UpdatesConfig {
    /// The profile of a model, if configured (manufacturer compared when both are known).
    pub fn profile(
        &self,
        manufacturer: Option<&str>,
        model: Option<&str>,
    ) -> Option<&ModelProfile> {
        let model = model?;
        self.models.iter().find(|p| {
            p.model.eq_ignore_ascii_case(model.trim())
                && match (&p.manufacturer, manufacturer) {
                    (Some(want), Some(got)) => want.eq_ignore_ascii_case(got.trim()),
                    _ => true,
                }
        })
    }
}
