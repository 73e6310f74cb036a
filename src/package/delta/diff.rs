//! bsdiff matching over a suffix array: turns (old, new) into a `Patch`.
//!
//! The scan is the classic bsdiff one (Percival 2003): find the longest match for the
//! current position, accept it when it beats the current alignment by more than 8 bytes,
//! then extend the previous match forward and the new one backward while at least half
//! the bytes agree. With `MatchOptions::CLASSIC` and the same suffix order the output is
//! byte-identical to the `bsdiff` crate's (libsais builds the index instead of qsufsort).
//! The builder's `MatchOptions::DEFAULT` adds one rule, the skip over a rejected long match,
//! which bounds the work by a small multiple of n log n on every input (runs of one byte,
//! blocks repeated many times), where the classic scan is quadratic; `MatchStats` counts
//! that work, and a step budget or the caller's `Progress::should_stop` can end it.

use super::suffix::SuffixArray;
use super::{DeltaError, Entry, Patch};
use crate::package::progress::{Progress, Step};

/// How often (in new-image bytes) matching reports progress.
const PROGRESS_EVERY: usize = 1 << 20;
/// How often (in matcher steps) matching asks the caller whether to stop.
const CHECK_EVERY: u64 = 1 << 22;

/// Matching knobs. `CLASSIC` reproduces the `bsdiff` crate byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchOptions {
    /// A new match is taken when it beats the current alignment by more than this many bytes.
    pub min_gain: usize,
    /// A rejected match at least this long moves the scan to `skip_keep` bytes before its
    /// end instead of one byte on (0: never; classic bsdiff). See `Matcher::run`.
    pub skip_from: usize,
    /// Bytes before the end of a rejected long match where the scan resumes.
    pub skip_keep: usize,
    /// Compare suffixes as strings in the suffix search (see `SuffixArray::longest_match_counted`).
    pub exact_search: bool,
    /// Matcher steps after which the diff gives up (`DeltaError::StepBudget`); `None`: no limit.
    pub max_steps: Option<u64>,
}

impl MatchOptions {
    /// The `bsdiff` crate's matcher: quadratic on long runs and repeated blocks.
    pub const CLASSIC: Self = Self {
        min_gain: 8,
        skip_from: 0,
        skip_keep: 0,
        exact_search: false,
        max_steps: None,
    };
    /// What the builder uses: classic decisions, linearithmic on every input.
    pub const DEFAULT: Self = Self {
        min_gain: 8,
        skip_from: 64,
        skip_keep: 32,
        exact_search: true,
        max_steps: None,
    };

    /// A step budget of `factor` x n log2 n for images of these sizes (n = old + new).
    pub fn budget_for(old_len: usize, new_len: usize, factor: u64) -> u64 {
        let n = (old_len + new_len).max(2) as u64;
        factor * n * u64::from(64 - n.leading_zeros())
    }
}

/// What matching cost: `steps` counts suffix-search probes and compared 8-byte words plus
/// every byte the scan and the extensions visit, the matcher's inner-loop work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MatchStats {
    pub steps: u64,
    pub searches: u64,
}

/// Diffs `old` into `new` with the builder's matcher and no step limit.
pub fn diff(old: &[u8], new: &[u8], progress: &mut dyn Progress) -> Result<Patch, DeltaError> {
    Ok(diff_with(old, new, MatchOptions::DEFAULT, progress)?.0)
}

/// Diffs `old` into `new`, returning the patch and what matching cost.
pub fn diff_with(
    old: &[u8],
    new: &[u8],
    options: MatchOptions,
    progress: &mut dyn Progress,
) -> Result<(Patch, MatchStats), DeltaError> {
    progress.start(Step::SuffixSort, old.len() as u64);
    let index = SuffixArray::new(old)?;
    progress.update(old.len() as u64);
    if progress.should_stop() {
        return Err(DeltaError::Stopped);
    }
    progress.start(Step::Match, new.len() as u64);
    let mut matcher = Matcher {
        index: &index,
        old,
        new,
        options,
        stats: MatchStats::default(),
        next_check: CHECK_EVERY,
    };
    let patch = matcher.run(progress)?;
    progress.update(new.len() as u64);
    Ok((patch, matcher.stats))
}

struct Matcher<'a> {
    index: &'a SuffixArray<'a>,
    old: &'a [u8],
    new: &'a [u8],
    options: MatchOptions,
    stats: MatchStats,
    next_check: u64,
}

impl Matcher<'_> {
    /// True when old[i + offset] exists and equals new[i].
    fn agrees(&self, i: usize, offset: isize) -> bool {
        let o = i as isize + offset;
        o >= 0 && (o as usize) < self.old.len() && self.old[o as usize] == self.new[i]
    }

    fn search(&mut self, scan: usize) -> (usize, usize) {
        let (pos, len, steps) = self
            .index
            .longest_match_counted(&self.new[scan..], self.options.exact_search);
        self.stats.steps += steps;
        self.stats.searches += 1;
        (pos, len)
    }

    /// Enforces the step budget and asks the caller, now and then, whether to go on.
    fn check(&mut self, progress: &mut dyn Progress) -> Result<(), DeltaError> {
        if let Some(max) = self.options.max_steps
            && self.stats.steps > max
        {
            return Err(DeltaError::StepBudget(max));
        }
        if self.stats.steps >= self.next_check {
            self.next_check = self.stats.steps + CHECK_EVERY;
            if progress.should_stop() {
                return Err(DeltaError::Stopped);
            }
        }
        Ok(())
    }

    fn run(&mut self, progress: &mut dyn Progress) -> Result<Patch, DeltaError> {
        let (old, new) = (self.old, self.new);
        let mut patch = Patch::with_capacity(new.len());
        let (mut scan, mut len, mut pos) = (0usize, 0usize, 0usize);
        let (mut last_scan, mut last_pos, mut last_offset) = (0usize, 0usize, 0isize);
        let mut next_report = PROGRESS_EVERY;

        while scan < new.len() {
            // Bytes of the candidate match that the previous alignment already covers.
            let mut old_score = 0isize;
            scan += len;
            let mut counted = scan;
            while scan < new.len() {
                (pos, len) = self.search(scan);
                self.stats.steps += (scan + len).saturating_sub(counted) as u64;
                while counted < scan + len {
                    if self.agrees(counted, last_offset) {
                        old_score += 1;
                    }
                    counted += 1;
                }
                let len_i = len as isize;
                if (len_i == old_score && len != 0)
                    || len_i > old_score + self.options.min_gain as isize
                {
                    break;
                }
                self.check(progress)?;
                // Rejected: the current alignment covers all but `min_gain` bytes of
                // [scan, scan + len). Classic bsdiff moves one byte on and searches again,
                // which inside a long run (or a block repeated many times) finds the same
                // match one byte shorter every time: quadratic. Any better match starting
                // inside the span still reaches past its end, so resuming `skip_keep`
                // bytes before the end finds it, at the cost of at most `min_gain`
                // mismatching bytes; each search then pays for at least half its length.
                let step = if self.options.skip_from > 0 && len >= self.options.skip_from {
                    len - self.options.skip_keep
                } else {
                    1
                };
                for _ in 0..step {
                    if self.agrees(scan, last_offset) {
                        old_score -= 1;
                    }
                    scan += 1;
                }
                self.stats.steps += step as u64;
            }
            if len as isize == old_score && scan != new.len() {
                // The match only continues the current alignment: skip over it.
                continue;
            }

            // Extend the previous match forward while at least half of the bytes agree.
            let mut lenf = 0usize;
            {
                let (mut s, mut best) = (0isize, 0isize);
                let mut i = 0usize;
                while last_scan + i < scan && last_pos + i < old.len() {
                    if old[last_pos + i] == new[last_scan + i] {
                        s += 1;
                    }
                    i += 1;
                    if s * 2 - i as isize > best * 2 - lenf as isize {
                        best = s;
                        lenf = i;
                    }
                }
                self.stats.steps += i as u64;
            }

            // Extend the new match backward the same way.
            let mut lenb = 0usize;
            if scan < new.len() {
                let (mut s, mut best) = (0isize, 0isize);
                let mut i = 1usize;
                while scan >= last_scan + i && pos >= i {
                    if old[pos - i] == new[scan - i] {
                        s += 1;
                    }
                    if s * 2 - i as isize > best * 2 - lenb as isize {
                        best = s;
                        lenb = i;
                    }
                    i += 1;
                }
                self.stats.steps += i as u64;
            }

            // The two extensions may overlap: split the overlap where it scores best.
            if last_scan + lenf > scan - lenb {
                let overlap = last_scan + lenf - (scan - lenb);
                let (mut s, mut best, mut lens) = (0isize, 0isize, 0usize);
                for i in 0..overlap {
                    if new[last_scan + lenf - overlap + i] == old[last_pos + lenf - overlap + i] {
                        s += 1;
                    }
                    if new[scan - lenb + i] == old[pos - lenb + i] {
                        s -= 1;
                    }
                    if s > best {
                        best = s;
                        lens = i + 1;
                    }
                }
                self.stats.steps += overlap as u64;
                lenf = lenf + lens - overlap;
                lenb -= lens;
            }

            let extra_end = scan - lenb;
            patch.push(
                Entry {
                    mix: lenf as u64,
                    copy: (extra_end - (last_scan + lenf)) as u64,
                    seek: (pos as i64 - lenb as i64) - (last_pos + lenf) as i64,
                },
                &new[last_scan..last_scan + lenf],
                &old[last_pos..last_pos + lenf],
                &new[last_scan + lenf..extra_end],
            );

            last_scan = extra_end;
            last_pos = pos - lenb;
            last_offset = pos as isize - scan as isize;
            self.check(progress)?;
            if scan >= next_report {
                progress.update(scan as u64);
                next_report = scan + PROGRESS_EVERY;
            }
        }
        patch.finish();
        Ok(patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::delta::raw;
    use crate::package::progress::NoProgress;

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn mutate(base: &[u8], seed: u64) -> Vec<u8> {
        let noise = pseudo_random(base.len(), seed);
        let mut out = Vec::with_capacity(base.len() + 64);
        for (i, &b) in base.iter().enumerate() {
            match noise[i] {
                0..=2 => out.push(b.wrapping_add(1)),
                3 => {}
                4 => {
                    out.push(b);
                    out.push(noise[(i + 1) % noise.len()]);
                }
                _ => out.push(b),
            }
        }
        out
    }

    #[test]
    fn raw_output_equals_the_bsdiff_crate() {
        let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (vec![], vec![]),
            (vec![], b"hello".to_vec()),
            (b"hello".to_vec(), vec![]),
            (b"hello world".to_vec(), b"hello there world".to_vec()),
            (pseudo_random(5000, 1), mutate(&pseudo_random(5000, 1), 9)),
            (
                [pseudo_random(3000, 2), pseudo_random(3000, 3)].concat(),
                [
                    pseudo_random(3000, 3),
                    pseudo_random(100, 4),
                    pseudo_random(3000, 2),
                ]
                .concat(),
            ),
        ];
        for (old, new) in cases {
            let mut ours = Vec::new();
            let (patch, _) = diff_with(&old, &new, MatchOptions::CLASSIC, &mut NoProgress).unwrap();
            raw::write(&patch, &mut ours).unwrap();
            let mut theirs = Vec::new();
            bsdiff::diff(&old, &new, &mut theirs).unwrap();
            assert_eq!(ours, theirs, "old {} new {}", old.len(), new.len());
            let mut rebuilt = Vec::new();
            bsdiff::patch(&old, &mut ours.as_slice(), &mut rebuilt).unwrap();
            assert_eq!(rebuilt, new);
        }
    }
}
