//! Binary deltas: bsdiff matching over a libsais suffix array, two wire forms, streaming apply.
//!
//! A `Patch` is the list of bsdiff control entries plus the "diff" bytes (new minus old,
//! mostly zeros) and the "extra" bytes (literal new data). It is written either as the
//! `bsdiff` crate's interleaved stream (`raw`) or as three separately compressed streams
//! multiplexed in bounded frames (`split`); both apply as a stream with the old image in
//! memory and a fixed window.

pub mod apply;
pub mod diff;
pub mod raw;
pub mod split;
pub mod suffix;

use std::io;

/// One bsdiff control entry: add `mix` diff bytes to old bytes at the old cursor, append
/// `copy` extra bytes, then move the old cursor by `seek` (after it advanced by `mix`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub mix: u64,
    pub copy: u64,
    pub seek: i64,
}

/// A delta in memory.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Patch {
    pub entries: Vec<Entry>,
    /// Concatenated mix bytes, `new - old` per byte (wrapping).
    pub diff: Vec<u8>,
    /// Concatenated literal bytes.
    pub extra: Vec<u8>,
}

impl Patch {
    pub fn with_capacity(new_len: usize) -> Self {
        Self {
            entries: Vec::new(),
            diff: Vec::with_capacity(new_len),
            extra: Vec::new(),
        }
    }

    /// Appends an entry with the new/old bytes it mixes and the literal bytes it copies.
    pub fn push(&mut self, entry: Entry, new_mix: &[u8], old_mix: &[u8], extra: &[u8]) {
        debug_assert_eq!(new_mix.len() as u64, entry.mix);
        debug_assert_eq!(extra.len() as u64, entry.copy);
        self.entries.push(entry);
        self.diff
            .extend(new_mix.iter().zip(old_mix).map(|(n, o)| n.wrapping_sub(*o)));
        self.extra.extend_from_slice(extra);
    }

    /// Length of the image this patch produces.
    pub fn new_len(&self) -> u64 {
        self.entries.iter().map(|e| e.mix + e.copy).sum()
    }
}

/// Errors while diffing.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    #[error("old image of {0} bytes is larger than the suffix array can index")]
    TooLarge(usize),
    #[error("suffix sort failed: {0}")]
    SuffixSort(String),
    #[error("compression failed: {0}")]
    Compress(#[from] io::Error),
    /// Matching took more than its budget of steps (see `diff::MatchOptions::max_steps`).
    #[error("matching exceeded its budget of {0} steps")]
    StepBudget(u64),
    /// The caller asked to stop (`Progress::should_stop`), e.g. past its time budget.
    #[error("stopped by the caller")]
    Stopped,
}

/// Errors while applying. The caller decides whether bad input means tampering,
/// truncation or a corrupt (but authentic) payload.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The patch stream is inconsistent (bad entry, out-of-range read, bad frame).
    #[error("corrupt patch: {0}")]
    Corrupt(String),
    /// Reading or decoding the patch stream failed.
    #[error("reading patch: {0}")]
    Input(io::Error),
    /// Writing the new image failed.
    #[error("writing new image: {0}")]
    Output(io::Error),
}

impl ApplyError {
    pub fn corrupt(what: impl Into<String>) -> Self {
        Self::Corrupt(what.into())
    }
}
