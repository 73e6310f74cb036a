//! Typed service configuration: defaults, then an optional TOML file, then `UPDRAFT_*` variables.
//!
//! The layering is deliberately simple: the TOML file deserialises into a whole
//! [`Config`] whose missing fields take their defaults, and the environment then
//! overrides single fields (see [`env`]). Secrets are [`SecretString`]s, so neither
//! `Debug` nor a log line can print them.

mod campaigns;
mod devices;
mod env;
mod updates;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub use campaigns::CampaignsConfig;
pub use devices::DevicesConfig;
pub use env::EnvWarning;
pub use updates::{ModelProfile, UpdatesConfig};

/// Everything `updraft serve` needs to run.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds (admin API, console, `/dm`, downloads).
    pub listen: SocketAddr,
    /// Folder of the embedded default: the SQLite database and the local blob folder.
    pub data_dir: PathBuf,
    /// `postgres://…` or `sqlite://…`; unset means SQLite in the data folder.
    pub database_url: Option<SecretString>,
    /// Bootstraps an admin API token with this value on every start.
    pub admin_token: Option<SecretString>,
    pub log: LogConfig,
    pub blob: BlobConfig,
    pub http: HttpConfig,
    pub dm: DmConfig,
    pub firmware: FirmwareConfig,
    pub keys: KeysConfig,
    pub builds: BuildsConfig,
    pub updates: UpdatesConfig,
    pub campaigns: CampaignsConfig,
    pub downloads: DownloadsConfig,
    pub devices: DevicesConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./updraft-data"),
            database_url: None,
            admin_token: None,
            log: LogConfig::default(),
            blob: BlobConfig::default(),
            http: HttpConfig::default(),
            dm: DmConfig::default(),
            firmware: FirmwareConfig::default(),
            keys: KeysConfig::default(),
            builds: BuildsConfig::default(),
            updates: UpdatesConfig::default(),
            campaigns: CampaignsConfig::default(),
            downloads: DownloadsConfig::default(),
            devices: DevicesConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `auto` (human-readable on a terminal, JSON otherwise), `pretty` or `json`.
    pub format: LogFormat,
    /// A `RUST_LOG`-style filter, e.g. `info,updraft=debug`.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Auto,
            filter: "info".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Pretty,
    Json,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlobConfig {
    /// `local` (a folder under the data dir) or `s3`. Unset: `s3` when a bucket is configured.
    pub backend: Option<BlobBackendKind>,
    /// Overrides the local blob folder (default `<data_dir>/blobs`).
    pub local_dir: Option<PathBuf>,
    pub s3: S3Config,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobBackendKind {
    Local,
    S3,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    pub bucket: Option<String>,
    /// Key prefix inside the bucket, e.g. `updraft/`.
    pub prefix: String,
    /// Custom endpoint (MinIO, Ceph, Garage, …); unset means AWS.
    pub endpoint: Option<String>,
    pub region: String,
    /// Path-style addressing (`endpoint/bucket/key`), which most self-hosted servers need.
    pub path_style: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<SecretString>,
    /// Objects larger than this are uploaded in parts of this size.
    pub part_size_bytes: usize,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            bucket: None,
            prefix: String::new(),
            endpoint: None,
            region: "us-east-1".to_owned(),
            path_style: false,
            access_key_id: None,
            secret_access_key: None,
            part_size_bytes: 8 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest JSON request body the admin API accepts.
    pub max_json_bytes: usize,
    /// How long a graceful shutdown waits for in-flight requests.
    pub shutdown_timeout_secs: u64,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_json_bytes: 256 * 1024,
            shutdown_timeout_secs: 30,
            workers: 0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DmConfig {
    /// The URL devices reach this service at (`https://dm.example.net`); `/dm` is appended
    /// for the server URI sent to devices. Unset: `http://<listen address>`.
    pub public_url: Option<String>,
    /// A DM session idle for longer than this is closed; the device's next message starts anew.
    pub session_idle_secs: u64,
    /// Largest DM message accepted, and our advertised MaxMsgSize.
    pub max_message_bytes: usize,
    /// Largest object we send (our MaxObjSize); a device's own limit still applies.
    pub max_object_bytes: u64,
    /// HTTP webhook of an SMS / WAP-push gateway that delivers Package 0 to real devices.
    /// A secret: such URLs usually carry the gateway's credential, so it is never logged nor
    /// written into a stored error.
    pub push_webhook_url: Option<SecretString>,
    /// Package 0 is sent again at this interval until the device connects…
    pub notification_retry_secs: u64,
    /// …at most this many times.
    pub notification_max_attempts: u32,
    /// Read `./DevDetail/FwV`, `SwV` and `HwV` once from a device whose firmware version is
    /// unknown, at the start of its next session (campaigns place devices in cohorts by it).
    pub read_inventory: bool,
}

impl Default for DmConfig {
    fn default() -> Self {
        DmConfig {
            public_url: None,
            session_idle_secs: 300,
            max_message_bytes: 512 * 1024,
            max_object_bytes: 64 * 1024 * 1024,
            push_webhook_url: None,
            notification_retry_secs: 60,
            read_inventory: true,
            notification_max_attempts: 5,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FirmwareConfig {
    /// Largest firmware image an upload may stream in (also bounds uploaded packages).
    pub max_bytes: u64,
}

impl Default for FirmwareConfig {
    fn default() -> Self {
        FirmwareConfig {
            max_bytes: 1024 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// Folder of the private signing keys generated by the API (default `<data_dir>/keys`).
    /// Replicas that generate keys must share it.
    pub dir: Option<PathBuf>,
    /// A private key file's text (`updraft-ed25519-secret <hex>`): registered and made the
    /// active signing key on start. Usually given as `UPDRAFT_SIGNING_KEY_FILE`.
    pub signing_key: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BuildsConfig {
    /// Run the package build worker in this process.
    pub enabled: bool,
    /// Builds run at once in this process (each on a blocking thread).
    pub concurrency: usize,
    /// A job fails for good after this many attempts.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt up to `retry_max_secs`.
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
    /// A worker's claim on a job lasts this long and is renewed while it builds; a
    /// crashed worker's job is taken up again once it runs out.
    pub lease_secs: u64,
    /// How often an idle worker looks for work.
    pub poll_interval_ms: u64,
    /// A delta is kept only when its package is smaller than this fraction of the full one.
    pub delta_max_ratio: f64,
    /// Wall-clock budget of one delta build (diff and compression); past it the job
    /// publishes no delta, records why, and devices get the full package. 0: no budget.
    pub delta_budget_secs: u64,
}

impl Default for BuildsConfig {
    fn default() -> Self {
        BuildsConfig {
            enabled: true,
            concurrency: 1,
            max_attempts: 5,
            retry_base_secs: 10,
            retry_max_secs: 600,
            lease_secs: 60,
            poll_interval_ms: 1000,
            delta_max_ratio: 0.5,
            delta_budget_secs: 600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DownloadsConfig {
    /// The key that signs device download links (at least 32 characters, e.g. 64 hex
    /// digits). Replicas must share it: a link minted by one is checked by any. Unset:
    /// one is generated into `<data_dir>/download-token.key` on first start and reused.
    pub token_key: Option<SecretString>,
    /// Lifetime of a minted link when the caller names none.
    pub link_ttl_secs: u64,
    /// Longest lifetime a link may be given.
    pub max_link_ttl_secs: u64,
    /// With the S3 blob store: answer a download with a redirect to a short-lived
    /// presigned S3 URL instead of proxying the bytes. Off by default, because not
    /// every DM client follows redirects.
    pub redirect_to_s3: bool,
    /// Lifetime of those presigned URLs.
    pub presign_ttl_secs: u64,
    /// Size of each read from a local blob while a download streams.
    pub chunk_bytes: usize,
}

impl Default for DownloadsConfig {
    fn default() -> Self {
        DownloadsConfig {
            token_key: None,
            link_ttl_secs: 24 * 3600,
            max_link_ttl_secs: 30 * 24 * 3600,
            redirect_to_s3: false,
            presign_ttl_secs: 300,
            chunk_bytes: 1024 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    ParseFile {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid value for {var}: {reason}")]
    InvalidEnv { var: String, reason: String },
    #[error("cannot read {var} from file {path}: {source}")]
    SecretFile {
        var: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Builds the configuration from defaults, an optional TOML file and the given environment.
    ///
    /// The environment is passed in (not read here) so tests can feed their own.
    pub fn load(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Config, Vec<EnvWarning>), ConfigError> {
        let mut config = match file {
            Some(path) => Self::from_toml_file(path)?,
            None => Config::default(),
        };
        let warnings = env::apply(&mut config, vars)?;
        config.validate()?;
        Ok((config, warnings))
    }

    fn from_toml_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::ParseFile {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let c = &self.campaigns;
        if c.tick_ms == 0 || c.batch == 0 || c.max_starts_per_second == 0 || c.max_cohorts == 0 {
            return Err(ConfigError::Invalid(
                "campaigns.tick_ms, batch, max_starts_per_second and max_cohorts must be at least 1"
                    .into(),
            ));
        }
        if self.blob_backend() == BlobBackendKind::S3 && self.blob.s3.bucket.is_none() {
            return Err(ConfigError::Invalid(
                "the s3 blob backend needs a bucket (UPDRAFT_S3_BUCKET)".into(),
            ));
        }
        // S3 refuses parts under 5 MiB (except the last one).
        if self.blob.s3.part_size_bytes < 5 * 1024 * 1024 {
            return Err(ConfigError::Invalid(
                "blob.s3.part_size_bytes must be at least 5 MiB".into(),
            ));
        }
        if self.builds.concurrency == 0 {
            return Err(ConfigError::Invalid(
                "builds.concurrency must be at least 1".into(),
            ));
        }
        if !(self.builds.delta_max_ratio > 0.0 && self.builds.delta_max_ratio <= 1.0) {
            return Err(ConfigError::Invalid(
                "builds.delta_max_ratio must be in (0, 1]".into(),
            ));
        }
        if self.builds.lease_secs == 0 || self.builds.max_attempts == 0 {
            return Err(ConfigError::Invalid(
                "builds.lease_secs and builds.max_attempts must be at least 1".into(),
            ));
        }
        let downloads = &self.downloads;
        if downloads.link_ttl_secs == 0 || downloads.link_ttl_secs > downloads.max_link_ttl_secs {
            return Err(ConfigError::Invalid(
                "downloads.link_ttl_secs must be between 1 and downloads.max_link_ttl_secs".into(),
            ));
        }
        // S3 refuses presigned URLs valid for longer than seven days.
        if !(1..=7 * 24 * 3600).contains(&downloads.presign_ttl_secs) {
            return Err(ConfigError::Invalid(
                "downloads.presign_ttl_secs must be between 1 and 604800".into(),
            ));
        }
        if !(16 * 1024..=16 * 1024 * 1024).contains(&downloads.chunk_bytes) {
            return Err(ConfigError::Invalid(
                "downloads.chunk_bytes must be between 16 KiB and 16 MiB".into(),
            ));
        }
        if downloads.redirect_to_s3 && self.blob_backend() != BlobBackendKind::S3 {
            return Err(ConfigError::Invalid(
                "downloads.redirect_to_s3 needs the s3 blob backend".into(),
            ));
        }
        if let Some(key) = &downloads.token_key
            && key.expose_secret().len() < crate::downloads::token::MIN_KEY_LEN
        {
            return Err(ConfigError::Invalid(format!(
                "downloads.token_key must be at least {} characters",
                crate::downloads::token::MIN_KEY_LEN
            )));
        }
        self.devices.validate()
    }

    /// The blob backend in force: explicit, else S3 when a bucket is set, else local.
    pub fn blob_backend(&self) -> BlobBackendKind {
        match (self.blob.backend, &self.blob.s3.bucket) {
            (Some(kind), _) => kind,
            (None, Some(_)) => BlobBackendKind::S3,
            (None, None) => BlobBackendKind::Local,
        }
    }

    /// The base URL devices use to reach us (no trailing slash).
    pub fn public_url(&self) -> String {
        match &self.dm.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }

    /// Folder of the generated private signing keys.
    pub fn keys_dir(&self) -> PathBuf {
        self.keys
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("keys"))
    }

    pub fn local_blob_dir(&self) -> PathBuf {
        self.blob
            .local_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("blobs"))
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_the_embedded_setup() {
        let (config, warnings) = Config::load(None, vec![]).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./updraft-data"));
        assert_eq!(config.blob_backend(), BlobBackendKind::Local);
        assert!(config.database_url.is_none());
        assert!(warnings.is_empty());
    }

    #[test]
    fn file_then_environment_override_in_that_order() {
        let dir = std::env::temp_dir().join(format!("updraft-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("updraft.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\ndata_dir = \"/srv/updraft\"\n[log]\nformat = \"json\"\n",
        )
        .unwrap();
        let (config, _) =
            Config::load(Some(&file), vars(&[("UPDRAFT_LISTEN", "127.0.0.1:7000")])).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(config.data_dir, PathBuf::from("/srv/updraft"));
        assert_eq!(config.log.format, LogFormat::Json);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let dir = std::env::temp_dir().join(format!("updraft-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("updraft.toml");
        std::fs::write(&file, "listne = \"0.0.0.0:9000\"\n").unwrap();
        let err = Config::load(Some(&file), vec![]).unwrap_err();
        assert!(err.to_string().contains("listne"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let (config, _) = Config::load(
            None,
            vars(&[
                ("UPDRAFT_ADMIN_TOKEN", "hunter2-token"),
                ("UPDRAFT_DATABASE_URL", "postgres://u:pw-secret@db/updraft"),
                ("UPDRAFT_S3_BUCKET", "fw"),
                ("UPDRAFT_S3_SECRET_ACCESS_KEY", "s3-secret-key"),
            ]),
        )
        .unwrap();
        let debug = format!("{config:?}");
        for secret in ["hunter2-token", "pw-secret", "s3-secret-key"] {
            assert!(!debug.contains(secret), "{secret} leaked in {debug}");
        }
        assert_eq!(
            config.admin_token.as_ref().unwrap().expose_secret(),
            "hunter2-token"
        );
        assert_eq!(config.blob_backend(), BlobBackendKind::S3);
    }

    #[test]
    fn download_settings_are_checked() {
        for (pairs, needle) in [
            (vec![("UPDRAFT_DOWNLOAD_TOKEN_KEY", "short")], "token_key"),
            (
                vec![("UPDRAFT_DOWNLOAD_REDIRECT_TO_S3", "true")],
                "redirect_to_s3",
            ),
            (
                vec![("UPDRAFT_DOWNLOAD_LINK_TTL_SECS", "0")],
                "link_ttl_secs",
            ),
            (vec![("UPDRAFT_DOWNLOAD_CHUNK_BYTES", "10")], "chunk_bytes"),
        ] {
            let err = Config::load(None, vars(&pairs)).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
        let key = "k".repeat(40);
        let (config, _) = Config::load(
            None,
            vars(&[
                ("UPDRAFT_DOWNLOAD_TOKEN_KEY", &key),
                ("UPDRAFT_S3_BUCKET", "fw"),
                ("UPDRAFT_DOWNLOAD_REDIRECT_TO_S3", "true"),
            ]),
        )
        .unwrap();
        assert!(config.downloads.redirect_to_s3);
        assert!(!format!("{config:?}").contains(&key));
    }

    #[test]
    fn s3_backend_without_bucket_is_an_error() {
        let err = Config::load(None, vars(&[("UPDRAFT_BLOB_BACKEND", "s3")])).unwrap_err();
        assert!(err.to_string().contains("bucket"), "{err}");
    }
}
