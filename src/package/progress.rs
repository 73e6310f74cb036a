//! Progress reporting hooks for long steps (suffix sort, matching, compression, apply).

/// A long step the builder or applier is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Building the suffix array of the old image.
    SuffixSort,
    /// Matching the new image against the old one (units: new-image bytes).
    Match,
    /// Compressing the payload (units: uncompressed bytes).
    Compress,
    /// Hashing a payload while checking it (units: payload bytes).
    Verify,
    /// Decoding and applying a payload (units: payload bytes).
    Apply,
}

/// Receives progress. The package module never draws anything: the caller decides
/// (the CLI draws a bar on a terminal and nothing otherwise).
pub trait Progress {
    /// A step starts; `total` is its length in the step's units (0 when unknown).
    fn start(&mut self, step: Step, total: u64);
    /// The current step has reached `done` units.
    fn update(&mut self, done: u64);
    /// Asked now and then during long steps: true makes the builder give up with
    /// `DeltaError::Stopped` (a caller's time budget; the package module reads no clock).
    fn should_stop(&self) -> bool {
        false
    }
}

/// Ignores all progress.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&mut self, _step: Step, _total: u64) {}
    fn update(&mut self, _done: u64) {}
}
