//! What a build costs in memory, as a formula of the image sizes (for admission control).
//!
//! Both estimates count everything a build holds at its peak, the caller's copies of the
//! images included (the server's worker and the CLI hold them), plus a fixed allowance for
//! the process around it. They are upper bounds by construction, not fits: every term
//! is the size of something the builder allocates, taken at its largest. Measured peaks
//! against them are in docs/BENCHMARKS.md ("Memory").
//!
//! A delta build (`build_delta`, `bsdiff-split+xz`) has two phases, and the peak is the
//! larger one:
//! - **matching**: old + new + the suffix array (4 bytes per old byte) + the patch so far;
//! - **encoding**: old + new + the patch + the LZMA encoder of its largest stream.
//!
//! The patch is about the new image's length at most: every new byte is either a mix byte
//! (held zero-run coded for images over 1 MiB, so a zero costs a fraction of a byte) or a
//! literal (extra) byte; control entries add 24 bytes each. The estimate allows a quarter
//! of the new image for entries and coding overhead, that is one entry per 96 new bytes
//! (the corpus has one per 1,200 to 16,000 bytes; the shapes fewer).
//! The LZMA encoder (`-9e`, binary-tree match finder) holds its dictionary window (the
//! stream), 8 bytes of tree per position it has seen, and a hash table of at most twice the
//! dictionary: 13 bytes per stream byte at most, and a stream is never longer than the new
//! image. On images that share most of their bytes the streams are small and matching
//! decides the peak; on unrelated images (an old image that does not help) the extra
//! stream is the whole new image and the encoder decides it.
//!
//! A full build (`full+xz`) holds the image, its compressed form (at most the image plus
//! 1 %), and per thread one xz block in and out (8 MiB each) and an `xz -6` encoder of
//! about 11 bytes per dictionary byte (the dictionary covers the block, at most 8 MiB).

use crate::package::compress::{FULL_XZ_BLOCK, log2_covering};

/// What the process needs besides the build (code, allocator, runtime), in bytes.
pub const PROCESS_ALLOWANCE: u64 = 16 << 20;

/// Bytes of suffix array per old byte (libsais, `i32` indices).
const SUFFIX_ARRAY_PER_OLD_BYTE: u64 = 4;
/// Upper bound of an LZMA `-9e` encoder's memory per stream byte (window, tree, hash).
const LZMA_PER_STREAM_BYTE: u64 = 13;
/// The patch's allowance beyond the new image's length, as a fraction: 1 / this.
const PATCH_OVERHEAD_DIVISOR: u64 = 4;

/// Peak memory of a delta build from `old_len` to `new_len` bytes (see the module docs).
pub fn delta_memory_estimate(old_len: u64, new_len: u64) -> u64 {
    let images = old_len + new_len;
    let patch = new_len + new_len / PATCH_OVERHEAD_DIVISOR;
    let matching = SUFFIX_ARRAY_PER_OLD_BYTE * old_len;
    let encoding = LZMA_PER_STREAM_BYTE * new_len;
    PROCESS_ALLOWANCE + images + patch + matching.max(encoding)
}

/// Peak memory of the matching phase alone: what a delta between images that share
/// most of their bytes needs (streams much smaller than the images; see the module docs).
pub fn delta_matching_memory(old_len: u64, new_len: u64) -> u64 {
    let patch = new_len / PATCH_OVERHEAD_DIVISOR;
    PROCESS_ALLOWANCE + old_len + new_len + patch + SUFFIX_ARRAY_PER_OLD_BYTE * old_len
}

/// Peak memory of a `full+xz` build of a `new_len`-byte image on `threads` threads.
pub fn full_memory_estimate(new_len: u64, threads: u32) -> u64 {
    let block = FULL_XZ_BLOCK.min(new_len.max(1));
    let dict = 1u64 << log2_covering(block as usize, 12, 23);
    let per_thread = 2 * block + 11 * dict;
    let threads = u64::from(threads.max(1)).min(new_len.div_ceil(FULL_XZ_BLOCK).max(1));
    PROCESS_ALLOWANCE + new_len + new_len + new_len / 100 + threads * per_thread
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn delta_estimate_is_the_larger_phase() {
        // Images of 16 MiB: the encoder bound (13 x 16 MiB) is above the suffix array's
        // 64 MiB; the matching phase alone (what related images need) is below it.
        let est = delta_memory_estimate(16 * MIB, 16 * MIB);
        assert_eq!(est, PROCESS_ALLOWANCE + 32 * MIB + 20 * MIB + 13 * 16 * MIB);
        let matching = delta_matching_memory(16 * MIB, 16 * MIB);
        assert!(matching < est);
        assert_eq!(matching, PROCESS_ALLOWANCE + 32 * MIB + 4 * MIB + 64 * MIB);
        // An old image much larger than the new one: the suffix array decides.
        let est = delta_memory_estimate(100 * MIB, MIB);
        assert_eq!(
            est,
            PROCESS_ALLOWANCE + 101 * MIB + MIB + MIB / 4 + 400 * MIB
        );
        // Monotone in both sizes.
        assert!(delta_memory_estimate(MIB, 2 * MIB) > delta_memory_estimate(MIB, MIB));
        assert!(delta_memory_estimate(2 * MIB, MIB) >= delta_memory_estimate(MIB, MIB));
    }

    #[test]
    fn full_estimate_is_bounded_by_the_window_not_only_the_image() {
        let small = full_memory_estimate(MIB, 4);
        // One thread's worth for an image of one block, with a 1 MiB dictionary.
        assert_eq!(
            small,
            PROCESS_ALLOWANCE + 2 * MIB + MIB / 100 + 2 * MIB + 11 * MIB
        );
        let big = full_memory_estimate(1024 * MIB, 2);
        let per_thread = 2 * 8 * MIB + 11 * 8 * MIB;
        assert_eq!(
            big,
            PROCESS_ALLOWANCE + 2048 * MIB + 1024 * MIB / 100 + 2 * per_thread
        );
    }
}
