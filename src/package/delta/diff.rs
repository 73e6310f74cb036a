//! bsdiff matching over a suffix array: turns (old, new) into a `Patch`.
//!
//! The scan is the classic bsdiff one (Percival 2003): find the longest match for the
//! current position, accept it when it beats the current alignment by more than 8 bytes,
//! then extend the previous match forward and the new one backward while at least half
//! the bytes agree. With the same suffix order the output is byte-identical to the
//! `bsdiff` crate's; only the index construction is different (libsais instead of qsufsort).

use super::suffix::SuffixArray;
use super::{DeltaError, Entry, Patch};
use crate::package::progress::{Progress, Step};

/// How often (in new-image bytes) matching reports progress.
const PROGRESS_EVERY: usize = 1 << 20;

/// Matching knobs. `CLASSIC` reproduces the `bsdiff` crate byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchOptions {
    /// A new match is taken when it beats the current alignment by more than this many bytes.
    pub min_gain: usize,
}

impl MatchOptions {
    pub const CLASSIC: Self = Self { min_gain: 8 };
}

/// Diffs `old` into `new` with the classic bsdiff heuristics.
pub fn diff(old: &[u8], new: &[u8], progress: &mut dyn Progress) -> Result<Patch, DeltaError> {
    diff_with(old, new, MatchOptions::CLASSIC, progress)
}

/// Diffs `old` into `new`.
pub fn diff_with(
    old: &[u8],
    new: &[u8],
    options: MatchOptions,
    progress: &mut dyn Progress,
) -> Result<Patch, DeltaError> {
    progress.start(Step::SuffixSort, old.len() as u64);
    let index = SuffixArray::new(old)?;
    progress.update(old.len() as u64);
    progress.start(Step::Match, new.len() as u64);
    let patch = Matcher {
        index: &index,
        old,
        new,
        options,
    }
    .run(progress);
    progress.update(new.len() as u64);
    Ok(patch)
}

struct Matcher<'a> {
    index: &'a SuffixArray<'a>,
    old: &'a [u8],
    new: &'a [u8],
    options: MatchOptions,
}

impl Matcher<'_> {
    /// True when old[i + offset] exists and equals new[i].
    fn agrees(&self, i: usize, offset: isize) -> bool {
        let o = i as isize + offset;
        o >= 0 && (o as usize) < self.old.len() && self.old[o as usize] == self.new[i]
    }

    fn run(&self, progress: &mut dyn Progress) -> Patch {
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
                (pos, len) = self.index.longest_match(&new[scan..]);
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
                if self.agrees(scan, last_offset) {
                    old_score -= 1;
                }
                scan += 1;
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
            if scan >= next_report {
                progress.update(scan as u64);
                next_report = scan + PROGRESS_EVERY;
            }
        }
        patch
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
            raw::write(&diff(&old, &new, &mut NoProgress).unwrap(), &mut ours).unwrap();
            let mut theirs = Vec::new();
            bsdiff::diff(&old, &new, &mut theirs).unwrap();
            assert_eq!(ours, theirs, "old {} new {}", old.len(), new.len());
            let mut rebuilt = Vec::new();
            bsdiff::patch(&old, &mut ours.as_slice(), &mut rebuilt).unwrap();
            assert_eq!(rebuilt, new);
        }
    }
}
