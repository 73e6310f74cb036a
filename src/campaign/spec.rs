//! What a campaign is: its targets (one firmware per manufacturer and model), the selector,
//! the waves, the policy, the schedule, retries, the per-device deadline, the delivery mode and
//! whether membership is static or dynamic. Validation and wave sizing are pure.

use serde::{Deserialize, Serialize};

use super::window::Window;
use crate::selector::Selector;

/// The firmware a device of one (manufacturer, model) is moved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub firmware_id: i64,
    pub manufacturer: String,
    pub model: String,
    pub version: String,
}

/// A wave's size: a count of devices or a percentage of the eligible selection.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaveSize {
    Count(u64),
    Percent(f64),
}

/// The gates that move a campaign on or stop it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// A finished wave advances when succeeded / verdicts reaches this (after the soak).
    pub advance_success_ratio: f64,
    /// The campaign pauses at once when failures / verdicts of a wave, or of a cohort across
    /// the campaign, exceeds this…
    pub pause_failure_ratio: f64,
    /// …once that wave or cohort has at least this many verdicts.
    pub min_sample: u64,
    /// Time between a wave's last verdict and the next wave's first start.
    pub soak_secs: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            advance_success_ratio: 0.9,
            pause_failure_ratio: 0.1,
            min_sample: 5,
            soak_secs: 0,
        }
    }
}

/// When devices may start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// The campaign starts running at this time (a started campaign is `scheduled` until then).
    pub start_at_ms: Option<i64>,
    /// Maintenance windows in each device's local time; none: any time.
    pub windows: Vec<Window>,
    /// The IANA time zone of devices that have none of their own (default UTC).
    pub timezone: Option<String>,
    /// Devices started per minute at most (a trailing 60-second window).
    pub max_starts_per_minute: Option<u32>,
    /// Devices started and without a verdict at most.
    pub max_concurrent: Option<u32>,
}

/// How a device's update is retried (transient failures only: FUMO classifies them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retries {
    /// Attempts per device, the first included.
    pub max_attempts: u32,
    /// Backoff before the first retry, doubled per attempt.
    pub backoff_secs: u64,
}

/// How packages travel (the update job's delivery).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    Url,
    Inline,
    Auto,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Url => "url",
            Self::Inline => "inline",
            Self::Auto => "auto",
        }
    }
}

/// Static: the devices selected at creation. Dynamic: devices that match later (newly
/// provisioned, or moved onto a selected version) join the current wave, or the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Membership {
    Static,
    Dynamic,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub name: String,
    pub targets: Vec<Target>,
    pub selector: Selector,
    pub waves: Vec<WaveSize>,
    pub policy: Policy,
    pub schedule: Schedule,
    pub retries: Retries,
    /// Each device's update job gives up (`timed_out`) this long after it starts.
    pub device_deadline_secs: u64,
    pub delivery: Delivery,
    pub membership: Membership,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    pub field: &'static str,
    pub message: String,
}

fn err(field: &'static str, message: impl Into<String>) -> SpecError {
    SpecError {
        field,
        message: message.into(),
    }
}

/// Bounds that keep a campaign's planning cheap and its body sane.
pub const MAX_WAVES: usize = 100;
pub const MAX_TARGETS: usize = 100;
pub const MAX_WINDOWS: usize = 50;
pub const MAX_NAME: usize = 200;

fn ratio(field: &'static str, v: f64) -> Result<(), SpecError> {
    if v.is_finite() && (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(err(field, "must be a number from 0 to 1"))
    }
}

impl Spec {
    pub fn validate(&self) -> Result<(), SpecError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control)
        {
            return Err(err("name", format!("1 to {MAX_NAME} printable characters")));
        }
        if self.targets.is_empty() || self.targets.len() > MAX_TARGETS {
            return Err(err(
                "target_firmware_ids",
                format!("1 to {MAX_TARGETS} firmware ids"),
            ));
        }
        for (i, a) in self.targets.iter().enumerate() {
            if self.targets[..i]
                .iter()
                .any(|b| b.manufacturer == a.manufacturer && b.model == a.model)
            {
                return Err(err(
                    "target_firmware_ids",
                    format!(
                        "two targets for {} {}: a campaign has one firmware per model",
                        a.manufacturer, a.model
                    ),
                ));
            }
        }
        if self.waves.is_empty() || self.waves.len() > MAX_WAVES {
            return Err(err("waves", format!("1 to {MAX_WAVES} waves")));
        }
        for w in &self.waves {
            match *w {
                WaveSize::Count(0) => return Err(err("waves", "a wave of 0 devices")),
                WaveSize::Percent(p) if !(p.is_finite() && p > 0.0 && p <= 100.0) => {
                    return Err(err("waves", "a percentage must be above 0 and at most 100"));
                }
                _ => {}
            }
        }
        ratio(
            "policy.pause_failure_ratio",
            self.policy.pause_failure_ratio,
        )?;
        ratio(
            "policy.advance_success_ratio",
            self.policy.advance_success_ratio,
        )?;
        if self.policy.min_sample == 0 {
            return Err(err("policy.min_sample", "must be at least 1"));
        }
        if self.policy.soak_secs > 30 * 24 * 3600 {
            return Err(err("policy.soak_secs", "at most 30 days"));
        }
        if self.schedule.windows.len() > MAX_WINDOWS {
            return Err(err(
                "schedule.windows",
                format!("at most {MAX_WINDOWS} windows"),
            ));
        }
        for w in &self.schedule.windows {
            w.validate().map_err(|m| err("schedule.windows", m))?;
        }
        if let Some(tz) = &self.schedule.timezone
            && tz.parse::<chrono_tz::Tz>().is_err()
        {
            return Err(err(
                "schedule.timezone",
                format!("{tz:?} is not an IANA time zone name"),
            ));
        }
        if self.schedule.max_concurrent == Some(0) {
            return Err(err("schedule.max_concurrent", "must be at least 1"));
        }
        if self.schedule.max_starts_per_minute == Some(0) {
            return Err(err("schedule.max_starts_per_minute", "must be at least 1"));
        }
        if !(1..=100).contains(&self.retries.max_attempts) {
            return Err(err("retries.max_attempts", "1 to 100"));
        }
        if self.retries.backoff_secs > 7 * 24 * 3600 {
            return Err(err("retries.backoff_secs", "at most 7 days"));
        }
        if !(60..=365 * 24 * 3600).contains(&self.device_deadline_secs) {
            return Err(err("device_deadline_secs", "60 seconds to 365 days"));
        }
        Ok(())
    }

    /// The target of a device's (manufacturer, model), compared as the update job compares
    /// them (trimmed, ASCII case-insensitive).
    pub fn target_for(&self, manufacturer: Option<&str>, model: Option<&str>) -> Option<&Target> {
        let same = |a: &str, b: &str| a.trim().eq_ignore_ascii_case(b.trim());
        let model = model?;
        self.targets.iter().find(|t| {
            same(&t.model, model) && manufacturer.is_none_or(|m| same(&t.manufacturer, m))
        })
    }
}

/// The size of each wave for `eligible` devices: counts as given, percentages of `eligible`
/// rounded up (a wave of a non-empty selection is never empty), in order, until the
/// selection runs out; the last wave takes the rest.
pub fn wave_sizes(waves: &[WaveSize], eligible: u64) -> Vec<u64> {
    let mut sizes = Vec::with_capacity(waves.len());
    let mut left = eligible;
    for (i, w) in waves.iter().enumerate() {
        let want = if i + 1 == waves.len() {
            left
        } else {
            match *w {
                WaveSize::Count(n) => n,
                WaveSize::Percent(p) => ((eligible as f64) * p / 100.0).ceil() as u64,
            }
        };
        let size = want.min(left);
        sizes.push(size);
        left -= size;
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waves_take_counts_then_percentages_and_the_last_takes_the_rest() {
        let waves = [
            WaveSize::Count(5),
            WaveSize::Percent(20.0),
            WaveSize::Percent(10.0),
        ];
        assert_eq!(wave_sizes(&waves, 300), vec![5, 60, 235]);
        assert_eq!(wave_sizes(&waves, 3), vec![3, 0, 0]);
        assert_eq!(wave_sizes(&waves, 0), vec![0, 0, 0]);
        assert_eq!(wave_sizes(&[WaveSize::Percent(1.0)], 7), vec![7]);
    }

    #[test]
    fn a_percentage_wave_of_a_small_selection_is_never_empty() {
        assert_eq!(
            wave_sizes(&[WaveSize::Percent(1.0), WaveSize::Count(1)], 10),
            vec![1, 9]
        );
    }
}
