//! Updraft packages: build, sign, verify and apply firmware update packages, sans IO.
//!
//! A package is a fixed header, a canonical JSON manifest, an ed25519 signature over the
//! manifest's exact bytes, then the payload (a compressed full image or a bsdiff delta).
//! See docs/package-format.md for the byte layout and the verifier's order of checks.
//!
//! **Architecture invariant:** nothing in this module does I/O on its own: no files, no
//! clock, no network, no randomness. Images come in as slices, packages stream through
//! caller-supplied `Read`/`Write`, time comes in as unix seconds, key seeds as bytes.

pub mod build;
pub mod compress;
pub mod delta;
pub mod error;
pub mod format;
pub mod manifest;
pub mod manifest_bin;
pub mod memory;
pub mod progress;
pub mod signing;
pub mod verify;

#[cfg(test)]
mod shape_tests;
#[cfg(test)]
mod tests;

pub use build::{
    BuildPolicy, Package, Release, ReleaseBuild, build_delta, build_full, build_release,
};
pub use compress::PayloadEncoding;
pub use error::{BuildError, PackageError};
pub use format::Header;
pub use manifest::{ImageRef, Manifest, PayloadRef, Sha256};
pub use memory::{delta_matching_memory, delta_memory_estimate, full_memory_estimate};
pub use progress::{NoProgress, Progress, Step};
pub use signing::{KeyId, KeyRing, PublicKey, SecretKey};
pub use verify::{
    Policy, apply, check_payload, check_source, read_manifest, read_unverified, verify,
};
