//! Maintenance windows in a device's local time: days of the week and a span of hours. A window
//! whose end is not after its start runs past midnight and belongs to the day it starts on.
//! Daylight-saving changes follow the IANA rules of the zone (`chrono-tz`).

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Days the window opens on; empty: every day.
    pub days: Vec<Weekday>,
    /// Local opening time.
    pub start: NaiveTime,
    /// Local closing time; at or before `start`: the next day.
    pub end: NaiveTime,
}

impl Window {
    pub fn validate(&self) -> Result<(), String> {
        for (i, d) in self.days.iter().enumerate() {
            if self.days[..i].contains(d) {
                return Err(format!("{d} appears twice in one window"));
            }
        }
        Ok(())
    }

    fn on(&self, day: Weekday) -> bool {
        self.days.is_empty() || self.days.contains(&day)
    }

    fn crosses_midnight(&self) -> bool {
        self.end <= self.start
    }

    /// Whether local wall time `t` on weekday `day` is inside the window.
    fn contains(&self, day: Weekday, t: NaiveTime) -> bool {
        if self.crosses_midnight() {
            (self.on(day) && t >= self.start) || (self.on(day.pred()) && t < self.end)
        } else {
            self.on(day) && t >= self.start && t < self.end
        }
    }
}

/// The zone a device is planned in: its own, else the campaign's default, else UTC. An unknown
/// name (validated on the way in, so only an old row could hold one) counts as UTC.
pub fn zone(device: Option<&str>, default: Option<&str>) -> Tz {
    device
        .or(default)
        .and_then(|name| name.parse::<Tz>().ok())
        .unwrap_or(Tz::UTC)
}

/// Whether a device in `tz` may start at `now`. No windows: always.
pub fn is_open(windows: &[Window], tz: Tz, now: DateTime<Utc>) -> bool {
    if windows.is_empty() {
        return true;
    }
    let local = now.with_timezone(&tz);
    let (day, t) = (local.weekday(), local.time());
    windows.iter().any(|w| w.contains(day, t))
}

/// The first instant after `now` at which a window opens in `tz` (`now` itself when one is
/// open), within the next eight days; `None` without windows or when none ever opens.
pub fn next_open(windows: &[Window], tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if windows.is_empty() || is_open(windows, tz, now) {
        return Some(now);
    }
    let today = now.with_timezone(&tz).date_naive();
    let mut best: Option<DateTime<Utc>> = None;
    for offset in 0..=8 {
        let date = today + Duration::days(offset);
        for w in windows.iter().filter(|w| w.on(date.weekday())) {
            // A local opening time that falls in a daylight-saving gap opens when the gap ends.
            let mut local = date.and_time(w.start);
            let opening = loop {
                if let Some(at) = tz.from_local_datetime(&local).earliest() {
                    break at.with_timezone(&Utc);
                }
                local += Duration::minutes(15);
            };
            if opening > now && best.is_none_or(|b| opening < b) {
                best = Some(opening);
            }
        }
        if best.is_some() {
            break;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_window_is_read_in_the_device_zone() {
        // 01:00-05:00 local; 2026-12-08 is a Tuesday.
        let w = [Window {
            days: vec![],
            start: t(1, 0),
            end: t(5, 0),
        }];
        let now = utc("2026-12-08T02:00:00Z");
        assert!(is_open(&w, Tz::UTC, now));
        assert!(is_open(&w, Tz::Europe__Paris, now)); // 03:00 local
        assert!(!is_open(&w, Tz::America__New_York, now)); // 21:00 local
        assert!(!is_open(&w, Tz::Asia__Tokyo, now)); // 11:00 local
        assert_eq!(
            next_open(&w, Tz::Asia__Tokyo, now),
            Some(utc("2026-12-08T16:00:00Z"))
        );
        assert_eq!(next_open(&w, Tz::UTC, now), Some(now));
    }

    #[test]
    fn a_window_past_midnight_belongs_to_the_day_it_starts() {
        let w = [Window {
            days: vec![Weekday::Fri],
            start: t(22, 0),
            end: t(2, 0),
        }];
        assert!(is_open(&w, Tz::UTC, utc("2026-12-11T23:00:00Z"))); // Friday night
        assert!(is_open(&w, Tz::UTC, utc("2026-12-12T01:59:00Z"))); // Saturday early
        assert!(!is_open(&w, Tz::UTC, utc("2026-12-12T02:00:00Z")));
        assert!(!is_open(&w, Tz::UTC, utc("2026-12-10T23:00:00Z"))); // Thursday night
        assert_eq!(
            next_open(&w, Tz::UTC, utc("2026-12-08T12:00:00Z")),
            Some(utc("2026-12-11T22:00:00Z"))
        );
    }

    #[test]
    fn an_opening_in_a_daylight_saving_gap_waits_for_the_gap_to_end() {
        // Paris skips 02:00-03:00 on 2027-03-28.
        let w = [Window {
            days: vec![Weekday::Sun],
            start: t(2, 30),
            end: t(4, 0),
        }];
        let at = next_open(&w, Tz::Europe__Paris, utc("2027-03-27T12:00:00Z")).unwrap();
        assert_eq!(at, utc("2027-03-28T01:00:00Z")); // 03:00 CEST
        assert!(is_open(&w, Tz::Europe__Paris, at));
    }

    #[test]
    fn no_windows_means_always_and_unknown_zones_are_utc() {
        assert!(is_open(&[], Tz::UTC, utc("2026-12-08T12:00:00Z")));
        assert_eq!(zone(Some("Mars/Olympus"), None), Tz::UTC);
        assert_eq!(zone(None, Some("Asia/Tokyo")), Tz::Asia__Tokyo);
        assert_eq!(
            zone(Some("Europe/Paris"), Some("Asia/Tokyo")),
            Tz::Europe__Paris
        );
    }
}
