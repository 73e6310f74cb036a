//! The `UPDRAFT_*` environment overlay: one table of known variables, `*_FILE` secrets, unknown-name warnings.

use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::SecretString;

use super::{BlobBackendKind, Config, ConfigError, LogFormat};

/// A variable that looks like ours but is not known: most often a typo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvWarning {
    pub var: String,
}

impl std::fmt::Display for EnvWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown environment variable {} is ignored", self.var)
    }
}

const PREFIX: &str = "UPDRAFT_";

/// Variables read by other parts of the binary (the CLI client, the test suite),
/// which the service itself ignores without warning.
const READ_ELSEWHERE: &[&str] = &[
    "UPDRAFT_CONFIG",
    "UPDRAFT_URL",
    "UPDRAFT_TOKEN",
    "UPDRAFT_TEST_DB",
    "UPDRAFT_TEST_POSTGRES_URL",
    "UPDRAFT_TEST_S3",
    "UPDRAFT_BIN",
];

type Setter = fn(&mut Config, &str, String) -> Result<(), ConfigError>;

/// (variable, is a secret that may come from `<VAR>_FILE`, setter)
const VARIABLES: &[(&str, bool, Setter)] = &[
    ("UPDRAFT_LISTEN", false, |c, var, v| {
        c.listen = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_DATA_DIR", false, |c, _, v| {
        c.data_dir = PathBuf::from(v);
        Ok(())
    }),
    ("UPDRAFT_DATABASE_URL", true, |c, _, v| {
        c.database_url = Some(SecretString::from(v));
        Ok(())
    }),
    ("UPDRAFT_ADMIN_TOKEN", true, |c, _, v| {
        c.admin_token = Some(SecretString::from(v));
        Ok(())
    }),
    ("UPDRAFT_LOG_FORMAT", false, |c, var, v| {
        c.log.format = match v.as_str() {
            "auto" => LogFormat::Auto,
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            _ => return Err(invalid(var, "expected auto, pretty or json")),
        };
        Ok(())
    }),
    ("UPDRAFT_LOG", false, |c, _, v| {
        c.log.filter = v;
        Ok(())
    }),
    ("UPDRAFT_BLOB_BACKEND", false, |c, var, v| {
        c.blob.backend = Some(match v.as_str() {
            "local" => BlobBackendKind::Local,
            "s3" => BlobBackendKind::S3,
            _ => return Err(invalid(var, "expected local or s3")),
        });
        Ok(())
    }),
    ("UPDRAFT_BLOB_DIR", false, |c, _, v| {
        c.blob.local_dir = Some(PathBuf::from(v));
        Ok(())
    }),
    ("UPDRAFT_S3_BUCKET", false, |c, _, v| {
        c.blob.s3.bucket = Some(v);
        Ok(())
    }),
    ("UPDRAFT_S3_PREFIX", false, |c, _, v| {
        c.blob.s3.prefix = v;
        Ok(())
    }),
    ("UPDRAFT_S3_ENDPOINT", false, |c, _, v| {
        c.blob.s3.endpoint = Some(v);
        Ok(())
    }),
    ("UPDRAFT_S3_REGION", false, |c, _, v| {
        c.blob.s3.region = v;
        Ok(())
    }),
    ("UPDRAFT_S3_PATH_STYLE", false, |c, var, v| {
        c.blob.s3.path_style = parse_bool(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_S3_ACCESS_KEY_ID", false, |c, _, v| {
        c.blob.s3.access_key_id = Some(v);
        Ok(())
    }),
    ("UPDRAFT_S3_SECRET_ACCESS_KEY", true, |c, _, v| {
        c.blob.s3.secret_access_key = Some(SecretString::from(v));
        Ok(())
    }),
    ("UPDRAFT_S3_PART_SIZE_BYTES", false, |c, var, v| {
        c.blob.s3.part_size_bytes = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_HTTP_MAX_JSON_BYTES", false, |c, var, v| {
        c.http.max_json_bytes = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_HTTP_WORKERS", false, |c, var, v| {
        c.http.workers = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_PUBLIC_URL", false, |c, _, v| {
        c.dm.public_url = Some(v);
        Ok(())
    }),
    ("UPDRAFT_DM_SESSION_IDLE_SECS", false, |c, var, v| {
        c.dm.session_idle_secs = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_DM_MAX_MESSAGE_BYTES", false, |c, var, v| {
        c.dm.max_message_bytes = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_DM_MAX_OBJECT_BYTES", false, |c, var, v| {
        c.dm.max_object_bytes = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_PUSH_WEBHOOK_URL", true, |c, _, v| {
        c.dm.push_webhook_url = Some(SecretString::from(v));
        Ok(())
    }),
    ("UPDRAFT_UPDATE_REPORT_TIMEOUT_SECS", false, |c, var, v| {
        c.updates.report_timeout_secs = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_UPDATE_RETRY_BASE_SECS", false, |c, var, v| {
        c.updates.retry_base_secs = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_UPDATE_RETRY_CAP_SECS", false, |c, var, v| {
        c.updates.retry_cap_secs = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_UPDATE_MAX_ATTEMPTS", false, |c, var, v| {
        c.updates.max_attempts = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_UPDATE_DEADLINE_SECS", false, |c, var, v| {
        c.updates.default_deadline_secs = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_CAMPAIGN_TICK_MS", false, |c, var, v| {
        c.campaigns.tick_ms = parse(var, &v)?;
        Ok(())
    }),
    (
        "UPDRAFT_CAMPAIGN_MAX_STARTS_PER_SECOND",
        false,
        |c, var, v| {
            c.campaigns.max_starts_per_second = parse(var, &v)?;
            Ok(())
        },
    ),
    ("UPDRAFT_DM_READ_INVENTORY", false, |c, var, v| {
        c.dm.read_inventory = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_NOTIFICATION_RETRY_SECS", false, |c, var, v| {
        c.dm.notification_retry_secs = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_NOTIFICATION_MAX_ATTEMPTS", false, |c, var, v| {
        c.dm.notification_max_attempts = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_SHUTDOWN_TIMEOUT_SECS", false, |c, var, v| {
        c.http.shutdown_timeout_secs = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_FIRMWARE_MAX_BYTES", false, |c, var, v| {
        c.firmware.max_bytes = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_KEYS_DIR", false, |c, _, v| {
        c.keys.dir = Some(PathBuf::from(v));
        Ok(())
    }),
    ("UPDRAFT_SIGNING_KEY", true, |c, _, v| {
        c.keys.signing_key = Some(SecretString::from(v));
        Ok(())
    }),
    ("UPDRAFT_BUILDS_ENABLED", false, |c, var, v| {
        c.builds.enabled = parse_bool(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_BUILDS_CONCURRENCY", false, |c, var, v| {
        c.builds.concurrency = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_BUILDS_MAX_ATTEMPTS", false, |c, var, v| {
        c.builds.max_attempts = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_BUILDS_RETRY_BASE_SECS", false, |c, var, v| {
        c.builds.retry_base_secs = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_BUILDS_RETRY_MAX_SECS", false, |c, var, v| {
        c.builds.retry_max_secs = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_BUILDS_LEASE_SECS", false, |c, var, v| {
        c.builds.lease_secs = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_BUILDS_POLL_INTERVAL_MS", false, |c, var, v| {
        c.builds.poll_interval_ms = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_BUILDS_DELTA_MAX_RATIO", false, |c, var, v| {
        c.builds.delta_max_ratio = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_DOWNLOAD_TOKEN_KEY", true, |c, _, v| {
        c.downloads.token_key = Some(SecretString::from(v));
        Ok(())
    }),
    ("UPDRAFT_DOWNLOAD_LINK_TTL_SECS", false, |c, var, v| {
        c.downloads.link_ttl_secs = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_DOWNLOAD_MAX_LINK_TTL_SECS", false, |c, var, v| {
        c.downloads.max_link_ttl_secs = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_DOWNLOAD_REDIRECT_TO_S3", false, |c, var, v| {
        c.downloads.redirect_to_s3 = parse_bool(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_DOWNLOAD_PRESIGN_TTL_SECS", false, |c, var, v| {
        c.downloads.presign_ttl_secs = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_DOWNLOAD_CHUNK_BYTES", false, |c, var, v| {
        c.downloads.chunk_bytes = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_BUILDS_DELTA_BUDGET_SECS", false, |c, var, v| {
        c.builds.delta_budget_secs = parse(var, &v)?;
        Ok(())
    }),
    ("UPDRAFT_DEVICES_IMPORT_MAX_BYTES", false, |c, var, v| {
        c.devices.import_max_bytes = parse(var, &v)?;
        Ok(())
    }),
    (
        "UPDRAFT_DEVICES_IMPORT_MAX_LINE_BYTES",
        false,
        |c, var, v| {
            c.devices.import_max_line_bytes = parse(var, &v)?;
            Ok(())
        },
    ),
    (
        "UPDRAFT_DEVICES_BULK_TAG_MAX_DEVICES",
        false,
        |c, var, v| {
            c.devices.bulk_tag_max_devices = parse(var, &v)?;
            Ok(())
        },
    ),
];

/// Applies the known `UPDRAFT_*` variables to `config`; returns a warning per unknown one.
pub(super) fn apply(
    config: &mut Config,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<EnvWarning>, ConfigError> {
    let vars: BTreeMap<String, String> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with(PREFIX))
        .collect();
    let mut known: Vec<String> = READ_ELSEWHERE.iter().map(|s| s.to_string()).collect();

    for (name, secret, set) in VARIABLES {
        known.push(name.to_string());
        let file_var = format!("{name}_FILE");
        if *secret {
            known.push(file_var.clone());
        }
        let value = match (
            vars.get(*name),
            secret.then(|| vars.get(&file_var)).flatten(),
        ) {
            (Some(_), Some(_)) => {
                return Err(invalid(name, &format!("set both {name} and {file_var}")));
            }
            (Some(value), None) => value.clone(),
            (None, Some(path)) => read_secret_file(&file_var, path)?,
            (None, None) => continue,
        };
        set(config, name, value)?;
    }

    Ok(vars
        .keys()
        .filter(|k| !known.contains(k))
        .map(|var| EnvWarning { var: var.clone() })
        .collect())
}

fn read_secret_file(var: &str, path: &str) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
        var: var.to_owned(),
        path: PathBuf::from(path),
        source,
    })?;
    // Secret files usually end with a newline that is not part of the secret.
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

fn parse<T: std::str::FromStr>(var: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e: T::Err| invalid(var, &e.to_string()))
}

fn parse_bool(var: &str, value: &str) -> Result<bool, ConfigError> {
    match value {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(var, "expected true or false")),
    }
}

fn invalid(var: &str, reason: &str) -> ConfigError {
    ConfigError::InvalidEnv {
        var: var.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unknown_updraft_variables_are_reported_and_others_ignored() {
        let mut config = Config::default();
        let warnings = apply(
            &mut config,
            env(&[
                ("UPDRAFT_LISEN", "1.2.3.4:5"),
                ("UPDRAFT_URL", "http://x"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(
            warnings,
            vec![EnvWarning {
                var: "UPDRAFT_LISEN".into()
            }]
        );
    }

    #[test]
    fn secrets_can_come_from_files() {
        let path = std::env::temp_dir().join(format!("updraft-secret-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, "from-a-file\n").unwrap();
        let mut config = Config::default();
        apply(
            &mut config,
            env(&[("UPDRAFT_ADMIN_TOKEN_FILE", path.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(
            config.admin_token.unwrap().expose_secret(),
            "from-a-file",
            "trailing newline is stripped"
        );
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_secret_set_twice_is_refused() {
        let mut config = Config::default();
        let err = apply(
            &mut config,
            env(&[
                ("UPDRAFT_ADMIN_TOKEN", "a"),
                ("UPDRAFT_ADMIN_TOKEN_FILE", "/nonexistent"),
            ]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("both"), "{err}");
    }

    #[test]
    fn malformed_values_name_the_variable() {
        let mut config = Config::default();
        let err = apply(&mut config, env(&[("UPDRAFT_LISTEN", "not-an-address")])).unwrap_err();
        assert!(err.to_string().contains("UPDRAFT_LISTEN"), "{err}");
        let err = apply(&mut config, env(&[("UPDRAFT_S3_PATH_STYLE", "maybe")])).unwrap_err();
        assert!(err.to_string().contains("true or false"), "{err}");
    }
}
