//! Device labels: the bounds of a device's tags and groups, and its time zone (an IANA name).

use std::collections::BTreeMap;

use crate::selector::{MAX_GROUPS, MAX_TAGS, check_name, check_tag};

/// At most [`MAX_TAGS`] tags, each by [`check_tag`].
pub fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), String> {
    if tags.len() > MAX_TAGS {
        return Err(format!("tags: at most {MAX_TAGS}, got {}", tags.len()));
    }
    for (key, value) in tags {
        check_tag(key, value).map_err(|m| format!("tags: {m}"))?;
    }
    Ok(())
}

/// At most [`MAX_GROUPS`] distinct groups, each named by [`check_name`].
pub fn check_groups(groups: &[String]) -> Result<(), String> {
    if groups.len() > MAX_GROUPS {
        return Err(format!(
            "groups: at most {MAX_GROUPS}, got {}",
            groups.len()
        ));
    }
    for (i, group) in groups.iter().enumerate() {
        check_name(group).map_err(|m| format!("groups: {m}"))?;
        if groups[..i].contains(group) {
            return Err(format!("groups: {group:?} given twice"));
        }
    }
    Ok(())
}

/// An IANA time zone name known to the time zone database (`Europe/Paris`, `UTC`); returns
/// it as the database spells it.
pub fn check_timezone(name: &str) -> Result<String, String> {
    name.parse::<chrono_tz::Tz>()
        .map(|tz| tz.name().to_owned())
        .map_err(|_| {
            format!("timezone: {name:?} is not an IANA time zone name (e.g. Europe/Paris)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded_and_named() {
        let many: BTreeMap<String, String> = (0..=MAX_TAGS)
            .map(|i| (format!("k{i}"), "v".into()))
            .collect();
        assert!(check_tags(&many).unwrap_err().contains("at most 32"));
        let bad = BTreeMap::from([("ring".to_owned(), String::new())]);
        assert!(
            check_tags(&bad)
                .unwrap_err()
                .starts_with("tags: value of ring")
        );
        check_tags(&BTreeMap::from([("ring".to_owned(), "canary".to_owned())])).unwrap();

        let twice = vec!["lab".to_owned(), "lab".to_owned()];
        assert_eq!(
            check_groups(&twice).unwrap_err(),
            "groups: \"lab\" given twice"
        );
        assert!(
            check_groups(&["a b".to_owned()])
                .unwrap_err()
                .starts_with("groups: ")
        );
        let many: Vec<String> = (0..=MAX_GROUPS).map(|i| format!("g{i}")).collect();
        assert!(check_groups(&many).unwrap_err().contains("at most 32"));
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert_eq!(check_timezone("Europe/Paris").unwrap(), "Europe/Paris");
        assert_eq!(check_timezone("UTC").unwrap(), "UTC");
        for bad in ["Mars/Olympus", "", "+02:00", "CEST"] {
            let err = check_timezone(bad).unwrap_err();
            assert!(err.starts_with("timezone: "), "{bad}: {err}");
        }
    }
}
