//! Which interface version a plugin component speaks, and whether this host
//! can run it.
//!
//! # The rule
//!
//! A plugin's interface version `P` is read from its export names
//! (`leasedb:plugin/storage@0.2.0`) before it is instantiated. The host runs
//! it with the newest bindings module `B` that is *semver-compatible* with `P`
//! and not newer than it:
//!
//! - compatible means the same compatibility line, as cargo defines it: the
//!   same major version when the major is 1 or more, and for a `0.y` version
//!   the same `0.y` (in 0.x, the minor plays the role of the major);
//! - within the line, any `P >= B` is accepted: newer minors (or, for 0.x,
//!   newer patches) only add.
//!
//! This is exactly how wasmtime matches versioned import and export names
//! (`a:b/c@1.2.0` satisfies `@1.3.0`; `@0.1.0` never satisfies `@0.2.0`), so
//! every version the rule accepts is one the host can actually link, and the
//! refusal names both versions. Supporting a new `0.y` line therefore takes a
//! new bindings module, while the host keeps the older ones (0.1 and 0.2 today).

use std::fmt;

use wasmtime::component::Component;
use wasmtime::Engine;

/// The WIT package every plugin interface belongs to.
pub const PACKAGE: &str = "leasedb:plugin";

/// A semantic version `major.minor.patch` (pre-release and build tags are refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InterfaceVersion {
    /// Incompatible changes (for 0.x: always 0).
    pub major: u32,
    /// Additions (for 0.x: incompatible changes).
    pub minor: u32,
    /// Fixes (for 0.x: additions).
    pub patch: u32,
}

impl InterfaceVersion {
    /// `major.minor.patch`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        InterfaceVersion {
            major,
            minor,
            patch,
        }
    }

    /// The compatibility line: `(major, 0)` from 1.0 on, `(0, minor)` before.
    pub fn line(self) -> (u32, u32) {
        if self.major == 0 {
            (0, self.minor)
        } else {
            (self.major, 0)
        }
    }

    /// Whether a plugin at `self` can be run by bindings generated for `bindings`.
    pub fn runs_on(self, bindings: InterfaceVersion) -> bool {
        self.line() == bindings.line() && self >= bindings
    }
}

impl fmt::Display for InterfaceVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl std::str::FromStr for InterfaceVersion {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut parts = text.split('.');
        let mut next = || -> Result<u32, String> {
            parts
                .next()
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("{text:?} is not a version major.minor.patch"))
        };
        let version = InterfaceVersion::new(next()?, next()?, next()?);
        match parts.next() {
            None => Ok(version),
            Some(_) => Err(format!("{text:?} is not a version major.minor.patch")),
        }
    }
}

/// Why a component is not a plugin this host runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionError {
    /// It exports nothing of `leasedb:plugin`.
    NotAPlugin,
    /// A `leasedb:plugin` export without a usable version.
    Unversioned(String),
    /// Its exports name more than one version.
    Mixed(InterfaceVersion, InterfaceVersion),
    /// No bindings module of this host runs that version.
    Unsupported {
        /// What the plugin speaks.
        found: InterfaceVersion,
        /// Oldest version this host runs.
        min: InterfaceVersion,
        /// Newest bindings module of this host.
        max: InterfaceVersion,
    },
}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionError::NotAPlugin => {
                write!(
                    f,
                    "the component is not a leasedb plugin: it exports no {PACKAGE} interface"
                )
            }
            VersionError::Unversioned(name) => {
                write!(
                    f,
                    "the plugin export {name:?} carries no major.minor.patch version"
                )
            }
            VersionError::Mixed(a, b) => {
                write!(f, "the plugin exports both {PACKAGE}@{a} and {PACKAGE}@{b}")
            }
            VersionError::Unsupported { found, min, max } => write!(
                f,
                "the plugin speaks {PACKAGE}@{found}; this host runs {min} up to {max} \
                 (same major version, or for 0.x the same minor, and not older)"
            ),
        }
    }
}

impl std::error::Error for VersionError {}

/// The interface version of `component`, from its export names.
pub fn of_component(
    engine: &Engine,
    component: &Component,
) -> Result<InterfaceVersion, VersionError> {
    let ty = component.component_type();
    of_export_names(ty.exports(engine).map(|(name, _)| name))
}

/// The interface version shared by the `leasedb:plugin/…@x.y.z` names among `names`.
pub fn of_export_names<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<InterfaceVersion, VersionError> {
    let prefix = format!("{PACKAGE}/");
    let mut found: Option<InterfaceVersion> = None;
    for name in names {
        if !name.starts_with(&prefix) {
            continue;
        }
        let version: InterfaceVersion = name
            .split_once('@')
            .and_then(|(_, v)| v.parse().ok())
            .ok_or_else(|| VersionError::Unversioned(name.to_owned()))?;
        match found {
            Some(seen) if seen != version => return Err(VersionError::Mixed(seen, version)),
            _ => found = Some(version),
        }
    }
    found.ok_or(VersionError::NotAPlugin)
}

/// Of `supported` (oldest first), the newest that runs a plugin at `found`.
pub fn select(
    found: InterfaceVersion,
    supported: &[InterfaceVersion],
) -> Result<InterfaceVersion, VersionError> {
    supported
        .iter()
        .rev()
        .find(|b| found.runs_on(**b))
        .copied()
        .ok_or(VersionError::Unsupported {
            found,
            min: supported[0],
            max: supported[supported.len() - 1],
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> InterfaceVersion {
        text.parse().unwrap()
    }

    /// The host's own list: 0.1 and 0.2.
    const HOST: [InterfaceVersion; 2] = [
        InterfaceVersion::new(0, 1, 0),
        InterfaceVersion::new(0, 2, 0),
    ];

    #[test]
    fn in_0_x_each_minor_is_its_own_line_and_newer_patches_are_accepted() {
        assert_eq!(select(v("0.1.0"), &HOST), Ok(v("0.1.0")));
        assert_eq!(select(v("0.1.7"), &HOST), Ok(v("0.1.0")));
        assert_eq!(select(v("0.2.0"), &HOST), Ok(v("0.2.0")));
        assert_eq!(select(v("0.2.3"), &HOST), Ok(v("0.2.0")));
        for refused in ["0.0.9", "0.3.0", "1.0.0", "2.1.0"] {
            assert_eq!(
                select(v(refused), &HOST),
                Err(VersionError::Unsupported {
                    found: v(refused),
                    min: v("0.1.0"),
                    max: v("0.2.0")
                }),
                "{refused}"
            );
        }
    }

    #[test]
    fn from_1_0_the_major_is_the_line_and_newer_minors_are_accepted() {
        let host = [v("0.2.0"), v("1.0.0"), v("1.2.0")];
        assert_eq!(select(v("1.0.5"), &host), Ok(v("1.0.0")));
        assert_eq!(select(v("1.1.0"), &host), Ok(v("1.0.0")));
        assert_eq!(select(v("1.2.0"), &host), Ok(v("1.2.0")));
        assert_eq!(select(v("1.9.0"), &host), Ok(v("1.2.0")));
        assert!(select(v("2.0.0"), &host).is_err());
        assert!(select(v("0.3.0"), &host).is_err());
    }

    #[test]
    fn the_refusal_names_both_versions() {
        let shown = select(v("1.0.0"), &HOST).unwrap_err().to_string();
        assert!(shown.contains("leasedb:plugin@1.0.0"), "{shown}");
        assert!(shown.contains("0.1.0 up to 0.2.0"), "{shown}");
    }

    #[test]
    fn the_version_comes_from_the_export_names() {
        let names = [
            "wasi:cli/run@0.2.6",
            "leasedb:plugin/storage@0.2.0",
            "leasedb:plugin/lifecycle@0.2.0",
        ];
        assert_eq!(of_export_names(names), Ok(v("0.2.0")));
        assert_eq!(
            of_export_names(["wasi:cli/run@0.2.6"]),
            Err(VersionError::NotAPlugin)
        );
        assert_eq!(
            of_export_names(["leasedb:plugin/storage"]),
            Err(VersionError::Unversioned("leasedb:plugin/storage".into()))
        );
        assert_eq!(
            of_export_names([
                "leasedb:plugin/storage@0.1.0",
                "leasedb:plugin/lifecycle@0.2.0"
            ]),
            Err(VersionError::Mixed(v("0.1.0"), v("0.2.0")))
        );
        assert!("0.2".parse::<InterfaceVersion>().is_err());
        assert!("0.2.0-rc1".parse::<InterfaceVersion>().is_err());
    }
}
