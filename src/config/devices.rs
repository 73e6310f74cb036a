//! `[devices]`: the bounds of bulk device operations (import, bulk tagging).

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevicesConfig {
    /// Largest body `POST /api/v1/devices/import` reads (413 past it).
    pub import_max_bytes: u64,
    /// Longest line of an import; a longer line is an error of that line.
    pub import_max_line_bytes: usize,
    /// Most devices one bulk tag change (`POST /api/v1/devices/tags`) may touch.
    pub bulk_tag_max_devices: u64,
}

impl Default for DevicesConfig {
    fn default() -> Self {
        DevicesConfig {
            import_max_bytes: 1024 * 1024 * 1024,
            import_max_line_bytes: 16 * 1024,
            bulk_tag_max_devices: 1_000_000,
        }
    }
}

impl DevicesConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(1024..=1024 * 1024).contains(&self.import_max_line_bytes) {
            return Err(ConfigError::Invalid(
                "devices.import_max_line_bytes must be between 1 KiB and 1 MiB".into(),
            ));
        }
        if self.import_max_bytes == 0 || self.bulk_tag_max_devices == 0 {
            return Err(ConfigError::Invalid(
                "devices.import_max_bytes and devices.bulk_tag_max_devices must be at least 1"
                    .into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, crate::config::ConfigError> {
        let vars = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::load(None, vars).map(|(config, _)| config)
    }

    #[test]
    fn device_bounds_come_from_the_environment_and_are_checked() {
        let config = load(&[
            ("UPDRAFT_DEVICES_IMPORT_MAX_BYTES", "2048"),
            ("UPDRAFT_DEVICES_IMPORT_MAX_LINE_BYTES", "4096"),
            ("UPDRAFT_DEVICES_BULK_TAG_MAX_DEVICES", "10"),
        ])
        .unwrap();
        assert_eq!(config.devices.import_max_bytes, 2048);
        assert_eq!(config.devices.import_max_line_bytes, 4096);
        assert_eq!(config.devices.bulk_tag_max_devices, 10);
        for (var, value) in [
            ("UPDRAFT_DEVICES_IMPORT_MAX_LINE_BYTES", "100"),
            ("UPDRAFT_DEVICES_IMPORT_MAX_BYTES", "0"),
            ("UPDRAFT_DEVICES_BULK_TAG_MAX_DEVICES", "0"),
        ] {
            let err = load(&[(var, value)]).unwrap_err().to_string();
            assert!(err.contains("devices."), "{var}: {err}");
        }
    }
}
