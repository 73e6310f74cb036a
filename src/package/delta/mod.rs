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
    /// Concatenated mix bytes, `new - old` per byte (wrapping): plain, or zero-run coded
    /// when `zero_run` is set (see `ZeroRuns`), which holds the mostly-zero diff of a large
    /// image in a fraction of its length while matching (the builder's peak memory).
    pub diff: Vec<u8>,
    /// `diff` is zero-run coded: `(zeros:varint | n:varint | n bytes)*`.
    pub zero_run: bool,
    /// Decoded length of `diff`.
    pub diff_len: u64,
    /// Concatenated literal bytes.
    pub extra: Vec<u8>,
    /// Zero-run coding state: zeros seen since the last flushed literal bytes, and the
    /// literal bytes not yet flushed.
    pending_zeros: u64,
    pending: Vec<u8>,
}

/// Images larger than this keep their diff zero-run coded in memory (and on the wire: the
/// split form codes diff streams of such images, see `split.rs`).
pub const ZERO_RUN_FROM: usize = 1 << 20;

impl Patch {
    /// An empty patch for a new image of `new_len` bytes.
    pub fn with_capacity(new_len: usize) -> Self {
        let zero_run = new_len > ZERO_RUN_FROM;
        Self {
            diff: Vec::with_capacity(if zero_run { new_len / 16 } else { new_len }),
            zero_run,
            ..Self::default()
        }
    }

    /// Appends an entry with the new/old bytes it mixes and the literal bytes it copies.
    pub fn push(&mut self, entry: Entry, new_mix: &[u8], old_mix: &[u8], extra: &[u8]) {
        debug_assert_eq!(new_mix.len() as u64, entry.mix);
        debug_assert_eq!(extra.len() as u64, entry.copy);
        self.entries.push(entry);
        let bytes = new_mix.iter().zip(old_mix).map(|(n, o)| n.wrapping_sub(*o));
        if self.zero_run {
            for b in bytes {
                if b == 0 {
                    if !self.pending.is_empty() {
                        self.flush_run();
                    }
                    self.pending_zeros += 1;
                } else {
                    self.pending.push(b);
                }
            }
        } else {
            self.diff.extend(bytes);
        }
        self.diff_len += entry.mix;
        self.extra.extend_from_slice(extra);
    }

    fn flush_run(&mut self) {
        crate::package::compress::write_varint(&mut self.diff, self.pending_zeros);
        crate::package::compress::write_varint(&mut self.diff, self.pending.len() as u64);
        self.diff.append(&mut self.pending);
        self.pending_zeros = 0;
    }

    /// Ends zero-run coding (called once matching is done; pushing after it is a bug).
    pub fn finish(&mut self) {
        if self.zero_run && (self.pending_zeros > 0 || !self.pending.is_empty()) {
            self.flush_run();
        }
        self.pending = Vec::new();
    }

    /// Reads the plain diff bytes in order, whatever the form in memory.
    pub fn diff_reader(&self) -> DiffReader<'_> {
        DiffReader {
            coded: &self.diff,
            zero_run: self.zero_run,
            zeros: 0,
            lits: 0,
        }
    }

    /// The plain diff bytes (tests and tools; the builder streams them instead).
    pub fn plain_diff(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.diff_len as usize);
        self.diff_reader().take(self.diff_len as usize, &mut out);
        out
    }

    /// Length of the image this patch produces.
    pub fn new_len(&self) -> u64 {
        self.entries.iter().map(|e| e.mix + e.copy).sum()
    }
}

/// Plain diff bytes out of a patch's diff, in order, a slice at a time.
pub struct DiffReader<'a> {
    coded: &'a [u8],
    zero_run: bool,
    zeros: u64,
    lits: u64,
}

impl DiffReader<'_> {
    /// Appends the next `n` plain diff bytes to `out` (fewer only past the end).
    pub fn take(&mut self, mut n: usize, out: &mut Vec<u8>) {
        if !self.zero_run {
            let k = n.min(self.coded.len());
            out.extend_from_slice(&self.coded[..k]);
            self.coded = &self.coded[k..];
            return;
        }
        while n > 0 {
            if self.zeros == 0 && self.lits == 0 {
                let mut next = || {
                    crate::package::compress::read_varint(&mut self.coded)
                        .ok()
                        .flatten()
                };
                let (Some(z), Some(l)) = (next(), next()) else {
                    return;
                };
                (self.zeros, self.lits) = (z, l);
            }
            let z = (self.zeros as usize).min(n);
            out.resize(out.len() + z, 0);
            self.zeros -= z as u64;
            n -= z;
            let l = (self.lits as usize).min(n).min(self.coded.len());
            out.extend_from_slice(&self.coded[..l]);
            self.coded = &self.coded[l..];
            self.lits -= l as u64;
            n -= l;
            if z == 0 && l == 0 && n > 0 && self.zeros == 0 && self.lits > 0 {
                return; // truncated coding: nothing more to give
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_run_coded_diff_reads_back_as_the_plain_one() {
        let mut coded = Patch::with_capacity(ZERO_RUN_FROM + 1);
        let mut plain = Patch::with_capacity(1000);
        assert!(coded.zero_run && !plain.zero_run);
        let old = [5u8; 300];
        let mut new = [5u8; 300];
        for i in [0, 1, 2, 100, 101, 250, 299] {
            new[i] = 9;
        }
        for (a, b) in [(0, 40), (40, 41), (41, 200), (200, 300)] {
            let entry = Entry {
                mix: b - a,
                copy: 1,
                seek: 0,
            };
            let (a, b) = (a as usize, b as usize);
            for p in [&mut coded, &mut plain] {
                p.push(entry, &new[a..b], &old[a..b], &[7]);
            }
        }
        coded.finish();
        plain.finish();
        assert!(coded.diff.len() < 40, "{}", coded.diff.len());
        assert_eq!(coded.plain_diff(), plain.diff);
        assert_eq!(coded.diff_len, 300);
        // Read back in uneven slices.
        let (mut reader, mut out) = (coded.diff_reader(), Vec::new());
        for n in [1, 2, 97, 50, 150, 10] {
            reader.take(n, &mut out);
        }
        assert_eq!(out, plain.diff);
    }
}
