//! Suffix array of the old image, built with libsais, searched for longest matches.

use super::DeltaError;

/// Suffix array of `old` with the empty suffix first, the layout the classic bsdiff search
/// expects: `sa[0] == old.len()`, then every non-empty suffix in lexicographic order.
///
/// Entries are `i32`, so an old image is limited to `i32::MAX - 1` bytes; the classic
/// qsufsort needed two `i64` arrays (16 bytes per input byte), this needs 4.
pub struct SuffixArray<'a> {
    old: &'a [u8],
    sa: Vec<i32>,
}

impl<'a> SuffixArray<'a> {
    /// Largest old image the index can address.
    pub const MAX_LEN: usize = i32::MAX as usize - 1;

    pub fn new(old: &'a [u8]) -> Result<Self, DeltaError> {
        if old.len() > Self::MAX_LEN {
            return Err(DeltaError::TooLarge(old.len()));
        }
        let mut sa = vec![0i32; old.len() + 1];
        sa[0] = old.len() as i32;
        if !old.is_empty() {
            libsais::SuffixArrayConstruction::for_text(old)
                .in_borrowed_buffer(&mut sa[1..])
                .single_threaded()
                .run()
                .map_err(|e| DeltaError::SuffixSort(format!("{e:?}")))?;
        }
        Ok(Self { old, sa })
    }

    /// Old offset and length of a longest common prefix between `target` and any suffix of old.
    ///
    /// Binary search narrows the suffix range to two neighbours, then the longer of their
    /// common prefixes wins (ties go to the upper neighbour). This exact tie rule is what
    /// makes our patches byte-identical to the `bsdiff` crate's.
    pub fn longest_match(&self, target: &[u8]) -> (usize, usize) {
        let (pos, len, _) = self.longest_match_counted(target, false);
        (pos, len)
    }

    /// `longest_match`, also returning the work done: probes plus compared 8-byte words.
    ///
    /// Every suffix between the two bounds shares at least min(lcp(lo), lcp(hi)) bytes with
    /// the target (they are sorted), so each probe compares from there on. The decisions
    /// are the classic ones; only the bytes already known to agree are not compared again.
    /// Without this, a probe inside a long run of one byte re-compares the whole run.
    ///
    /// `exact == false` is the classic order, which counts a suffix that is a proper prefix
    /// of the target as not below it: then the search is not monotone, and inside a run
    /// at the end of the old image it lands on the shortest run suffix, returning a match
    /// of a byte or two after comparing the whole run at every probe (quadratic overall).
    /// `exact == true` compares suffixes as strings, so the search finds the target's
    /// place in the order and its neighbours hold a longest match.
    pub fn longest_match_counted(&self, target: &[u8], exact: bool) -> (usize, usize, u64) {
        let (mut lo, mut hi) = (0usize, self.sa.len() - 1);
        let (lo_pos, hi_pos) = (self.sa[lo] as usize, self.sa[hi] as usize);
        let mut lcp_lo = common_prefix(&self.old[lo_pos..], target);
        let mut lcp_hi = common_prefix(&self.old[hi_pos..], target);
        let mut steps = 2 + (lcp_lo + lcp_hi) as u64 / 8;
        while hi - lo >= 2 {
            let mid = lo + (hi - lo) / 2;
            let suffix = &self.old[self.sa[mid] as usize..];
            let known = lcp_lo.min(lcp_hi);
            let l = known + common_prefix(&suffix[known..], &target[known..]);
            steps += 1 + (l - known) as u64 / 8;
            let k = suffix.len().min(target.len());
            let below = if l < k {
                suffix[l] < target[l]
            } else {
                exact && suffix.len() < target.len()
            };
            if below {
                (lo, lcp_lo) = (mid, l);
            } else {
                (hi, lcp_hi) = (mid, l);
            }
        }
        if lcp_lo > lcp_hi {
            (self.sa[lo] as usize, lcp_lo, steps)
        } else {
            (self.sa[hi] as usize, lcp_hi, steps)
        }
    }
}

/// Length of the common prefix of `a` and `b`, eight bytes at a time.
pub fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().expect("8 bytes"));
        let y = u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let d = x ^ y;
        if d != 0 {
            return i + (d.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_are_sorted_with_empty_suffix_first() {
        let text = b"mississippi banana mississippi";
        let sa = SuffixArray::new(text).unwrap();
        assert_eq!(sa.sa[0] as usize, text.len());
        for w in sa.sa[1..].windows(2) {
            assert!(text[w[0] as usize..] < text[w[1] as usize..]);
        }
        assert_eq!(sa.sa.len(), text.len() + 1);
    }

    #[test]
    fn longest_match_finds_the_longest_prefix() {
        let old = b"the quick brown fox jumps over the lazy dog";
        let sa = SuffixArray::new(old).unwrap();
        let (pos, len) = sa.longest_match(b"lazy dogs");
        assert_eq!((pos, len), (35, 8));
        let (_, len) = sa.longest_match(b"\xff");
        assert_eq!(len, 0);
    }

    #[test]
    fn common_prefix_handles_all_offsets() {
        let a: Vec<u8> = (0..40).collect();
        for cut in 0..40 {
            let mut b = a.clone();
            b[cut] ^= 1;
            assert_eq!(common_prefix(&a, &b), cut);
        }
        assert_eq!(common_prefix(&a, &a[..17]), 17);
    }
}
