//! `[campaigns]`: how the campaign scheduler runs and what protects the server from its own
//! campaigns.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignsConfig {
    /// How often the scheduler of each replica looks for due campaigns.
    pub tick_ms: u64,
    /// Devices one tick of one campaign starts at most (the planner's candidate batch).
    pub batch: u32,
    /// Campaign starts (each a Package 0 and a DM session to come) per second across every
    /// campaign and replica: the server's protection against its own campaigns.
    pub max_starts_per_second: u32,
    /// Cohorts (manufacturer, model, source version) a campaign may span.
    pub max_cohorts: u32,
}

impl Default for CampaignsConfig {
    fn default() -> Self {
        CampaignsConfig {
            tick_ms: 1000,
            batch: 200,
            max_starts_per_second: 100,
            max_cohorts: 1000,
        }
    }
}
