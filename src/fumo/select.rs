//! Which package a device gets: chosen from the firmware version it reported in this very
//! session, never from what the inventory said before.

use serde::{Deserialize, Serialize};

/// What the job wants the device to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub manufacturer: String,
    pub model: String,
    pub version: String,
}

/// A package that exists for the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: i64,
    pub kind: PackageKind,
    pub manufacturer: String,
    pub model: String,
    pub target_version: String,
    /// For deltas: the firmware version the delta applies to.
    pub source_version: Option<String>,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = UpdatePackageKind)]
pub enum PackageKind {
    Full,
    Delta,
}

/// What the device told us in this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reported<'a> {
    /// `./DevInfo/Man`, if sent.
    pub manufacturer: Option<&'a str>,
    /// `./DevInfo/Mod`, if sent.
    pub model: Option<&'a str>,
    /// `./DevDetail/FwV` as read in this session.
    pub fw_version: &'a str,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Package {
        id: i64,
        kind: PackageKind,
        size: u64,
    },
    /// The device already runs the target version.
    AlreadyOnTarget,
    /// The device is not one the target firmware is for (reason in words).
    Incompatible(String),
    /// No package exists for the target (not built yet, or failed).
    NoPackage,
}

/// A delta is used only when it is at most this fraction of the full package; past it, the
/// device might as well download the full image (and a full package needs no exact source).
pub const DELTA_WORTH_RATIO: f64 = 0.9;

fn same(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// Chooses the package for a device that reported `device`.
pub fn choose(target: &Target, device: Reported<'_>, candidates: &[Candidate]) -> Choice {
    if let Some(model) = device.model
        && !same(model, &target.model)
    {
        return Choice::Incompatible(format!("device model {model:?} is not {:?}", target.model));
    }
    if let Some(man) = device.manufacturer
        && !same(man, &target.manufacturer)
    {
        return Choice::Incompatible(format!(
            "device manufacturer {man:?} is not {:?}",
            target.manufacturer
        ));
    }
    if device.fw_version.trim() == target.version.trim() {
        return Choice::AlreadyOnTarget;
    }
    let fits = |c: &&Candidate| {
        same(&c.model, &target.model)
            && same(&c.manufacturer, &target.manufacturer)
            && c.target_version.trim() == target.version.trim()
    };
    let full = candidates
        .iter()
        .filter(fits)
        .filter(|c| c.kind == PackageKind::Full)
        .min_by_key(|c| (c.size, c.id));
    let delta = candidates
        .iter()
        .filter(fits)
        .filter(|c| c.kind == PackageKind::Delta)
        .filter(|c| c.source_version.as_deref().map(str::trim) == Some(device.fw_version.trim()))
        .min_by_key(|c| (c.size, c.id));
    match (delta, full) {
        (Some(d), Some(f)) if (d.size as f64) <= DELTA_WORTH_RATIO * f.size as f64 => {
            Choice::Package {
                id: d.id,
                kind: PackageKind::Delta,
                size: d.size,
            }
        }
        (Some(d), None) => Choice::Package {
            id: d.id,
            kind: PackageKind::Delta,
            size: d.size,
        },
        (_, Some(f)) => Choice::Package {
            id: f.id,
            kind: PackageKind::Full,
            size: f.size,
        },
        (None, None) => Choice::NoPackage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            manufacturer: "Acme".into(),
            model: "M1".into(),
            version: "2.0".into(),
        }
    }

    fn cand(id: i64, kind: PackageKind, source: Option<&str>, size: u64) -> Candidate {
        Candidate {
            id,
            kind,
            manufacturer: "Acme".into(),
            model: "M1".into(),
            target_version: "2.0".into(),
            source_version: source.map(str::to_owned),
            size,
        }
    }

    fn reported(fw: &str) -> Reported<'_> {
        Reported {
            manufacturer: Some("ACME"),
            model: Some("M1"),
            fw_version: fw,
        }
    }

    #[test]
    fn a_delta_from_the_reported_version_wins_when_it_is_worth_it() {
        let c = [
            cand(1, PackageKind::Full, None, 1000),
            cand(2, PackageKind::Delta, Some("1.0"), 100),
            cand(3, PackageKind::Delta, Some("1.1"), 50),
        ];
        assert_eq!(
            choose(&target(), reported("1.0"), &c),
            Choice::Package {
                id: 2,
                kind: PackageKind::Delta,
                size: 100
            }
        );
    }

    #[test]
    fn no_delta_for_the_version_or_one_not_worth_it_gives_the_full_package() {
        let c = [
            cand(1, PackageKind::Full, None, 1000),
            cand(2, PackageKind::Delta, Some("1.0"), 950),
        ];
        let full = Choice::Package {
            id: 1,
            kind: PackageKind::Full,
            size: 1000,
        };
        assert_eq!(choose(&target(), reported("1.0"), &c), full);
        assert_eq!(choose(&target(), reported("0.9"), &c), full);
    }

    #[test]
    fn another_model_is_incompatible_and_the_target_version_needs_nothing() {
        let c = [cand(1, PackageKind::Full, None, 1000)];
        let other = Reported {
            model: Some("M2"),
            ..reported("1.0")
        };
        assert!(matches!(
            choose(&target(), other, &c),
            Choice::Incompatible(_)
        ));
        assert_eq!(
            choose(&target(), reported("2.0"), &c),
            Choice::AlreadyOnTarget
        );
        assert_eq!(choose(&target(), reported("1.0"), &[]), Choice::NoPackage);
    }
}
