//! HTTP range decisions for downloads, sans-IO: `Range`, `If-Range`, and what to answer.
//!
//! RFC 9110 section 14. One range is served as 206; several ranges in one request are
//! answered with the whole object (200), which the RFC allows (a server may ignore
//! `Range`) and every download client handles, so no multipart body is ever built. A
//! `Range` that does not parse, or uses another unit, is ignored the same way.

/// What to send for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The whole object, 200.
    Full,
    /// Bytes `start..=end`, 206 with `Content-Range: bytes start-end/size`.
    Partial { start: u64, end: u64 },
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

impl Plan {
    /// Bytes the body carries for an object of `size` bytes.
    pub fn body_len(&self, size: u64) -> u64 {
        match *self {
            Plan::Full => size,
            Plan::Partial { start, end } => end + 1 - start,
            Plan::Unsatisfiable => 0,
        }
    }
}

/// The object's validators, as sent in `ETag` and `Last-Modified`.
#[derive(Debug, Clone, Copy)]
pub struct Validators<'a> {
    /// A strong entity tag, quotes included: `"<sha256>"`.
    pub etag: &'a str,
    /// Unix seconds of `Last-Modified`.
    pub last_modified: i64,
}

/// Decides the answer from the request's `Range` and `If-Range` values.
pub fn plan(
    size: u64,
    range: Option<&str>,
    if_range: Option<&str>,
    validators: Validators<'_>,
) -> Plan {
    let Some(range) = range else {
        return Plan::Full;
    };
    // A failed If-Range means "the copy I have is stale: send me all of it".
    if let Some(condition) = if_range
        && !if_range_holds(condition, validators)
    {
        return Plan::Full;
    }
    parse_single(range, size).unwrap_or(Plan::Full)
}

/// RFC 9110 13.1.5: an entity tag matches by strong comparison only (a weak tag never
/// does); a date matches only when it is exactly our `Last-Modified`.
fn if_range_holds(condition: &str, validators: Validators<'_>) -> bool {
    let condition = condition.trim();
    if condition.starts_with('"') {
        return condition == validators.etag;
    }
    if condition.starts_with("W/") {
        return false;
    }
    chrono::DateTime::parse_from_rfc2822(condition)
        .is_ok_and(|date| date.timestamp() == validators.last_modified)
}

/// `None` when the header is to be ignored (another unit, bad syntax, several ranges).
fn parse_single(value: &str, size: u64) -> Option<Plan> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if first.is_empty() {
        // Suffix range: the last N bytes.
        if !digits(last) {
            return None;
        }
        let n: u64 = last.parse().ok()?;
        if n == 0 || size == 0 {
            return Some(Plan::Unsatisfiable);
        }
        return Some(Plan::Partial {
            start: size.saturating_sub(n),
            end: size - 1,
        });
    }
    if !digits(first) || !(last.is_empty() || digits(last)) {
        return None;
    }
    let start: u64 = first.parse().ok()?;
    let end = if last.is_empty() {
        u64::MAX
    } else {
        last.parse().ok()?
    };
    if end < start {
        return None;
    }
    if start >= size {
        return Some(Plan::Unsatisfiable);
    }
    Some(Plan::Partial {
        start,
        end: end.min(size - 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Validators<'static> = Validators {
        etag: "\"abc\"",
        last_modified: 784_111_777, // Sun, 06 Nov 1994 08:49:37 GMT
    };

    fn p(range: &str) -> Plan {
        plan(1000, Some(range), None, V)
    }

    #[test]
    fn single_ranges() {
        assert_eq!(p("bytes=0-99"), Plan::Partial { start: 0, end: 99 });
        assert_eq!(
            p("bytes=900-"),
            Plan::Partial {
                start: 900,
                end: 999
            }
        );
        assert_eq!(
            p("bytes=-100"),
            Plan::Partial {
                start: 900,
                end: 999
            }
        );
        assert_eq!(p("bytes=-5000"), Plan::Partial { start: 0, end: 999 });
        assert_eq!(
            p("bytes=990-5000"),
            Plan::Partial {
                start: 990,
                end: 999
            }
        );
        assert_eq!(p("bytes=999-999").body_len(1000), 1);
    }

    #[test]
    fn unsatisfiable_ranges() {
        assert_eq!(p("bytes=1000-"), Plan::Unsatisfiable);
        assert_eq!(p("bytes=5000-6000"), Plan::Unsatisfiable);
        assert_eq!(p("bytes=-0"), Plan::Unsatisfiable);
        assert_eq!(plan(0, Some("bytes=0-"), None, V), Plan::Unsatisfiable);
        assert_eq!(plan(0, Some("bytes=-1"), None, V), Plan::Unsatisfiable);
    }

    #[test]
    fn ignored_ranges_answer_the_whole_object() {
        for value in [
            "items=0-1",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=0-1,5-6",
            "bytes=--1",
            "bytes=+1-2",
            "bytes",
        ] {
            assert_eq!(p(value), Plan::Full, "{value}");
        }
        assert_eq!(plan(1000, None, Some("\"abc\""), V), Plan::Full);
    }

    #[test]
    fn if_range_by_entity_tag_and_by_date() {
        let partial = Plan::Partial { start: 0, end: 9 };
        let with = |condition: &str| plan(1000, Some("bytes=0-9"), Some(condition), V);
        assert_eq!(with("\"abc\""), partial);
        assert_eq!(with("\"other\""), Plan::Full);
        assert_eq!(with("W/\"abc\""), Plan::Full);
        assert_eq!(with("Sun, 06 Nov 1994 08:49:37 GMT"), partial);
        assert_eq!(with("Sun, 06 Nov 1994 08:49:38 GMT"), Plan::Full);
        assert_eq!(with("yesterday"), Plan::Full);
    }
}
