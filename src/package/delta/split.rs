//! Split bsdiff form: control, diff and extra as three compressed streams, multiplexed in frames.
//!
//! Compressing the three kinds of data apart is what bsdiff (C) does and is worth several
//! percent: diff bytes are mostly zeros, extra bytes look like the new image, control
//! values are small integers. One continuous compressor per stream keeps all history;
//! each frame carries the next chunk of each stream, flushed so that the frame decodes on
//! its own. A frame produces at most `frame_limit` bytes of new image, so applying needs
//! the old image plus one frame of buffers (see docs/package-format.md).
//!
//! ```text
//! payload := version:u8 (=1) | (codec:u8 | param:u8) x3 (ctrl, diff, extra)
//!            | diff_form:u8 | frame_limit:u32be | frame*
//! codec   := 0 stored | 1 raw LZMA2 (param = log2 of the dictionary size) | 2 zstd (param 0)
//! diff_form := 0 plain bytes | 1 zero-run coded: (zeros:varint | n:varint | n bytes)*
//! frame   := ctrl_len:varint | diff_len:varint | extra_len:varint
//!            | ctrl chunk | diff chunk | extra chunk
//! control := (mix:varint | copy:varint | seek:zigzag varint)*   (decoded ctrl stream)
//! ```

use std::io::{self, Read, Write};

use super::apply::Patcher;
use super::{ApplyError, DeltaError, Entry, Patch};
use crate::package::compress::{
    ChunkCodec, ChunkDecoder, ChunkEncoder, LZMA_MAX_DICT_LOG, log2_covering, read_varint,
    write_varint,
};
use crate::package::progress::{Progress, Step};

pub const VERSION: u8 = 1;
/// New-image bytes per frame the builder uses. Fewer frames cost fewer bytes (each
/// frame splits an entry and flushes three compressors); 4 MiB keeps the window small.
pub const DEFAULT_FRAME_LIMIT: u32 = 4 << 20;
/// Largest frame limit an applier accepts: the window is about twice this.
pub const MAX_FRAME_LIMIT: u32 = 16 << 20;
/// Decoded control bytes per frame the builder allows before it cuts a frame.
const CTRL_TARGET: usize = 64 << 10;
/// Decoded control bytes per frame an applier accepts.
const MAX_CTRL: usize = 1 << 20;
/// Compressed chunks may be slightly larger than their content (stored blocks).
const CHUNK_SLACK: usize = 64 << 10;

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

/// Cumulative stream offsets at the end of a frame.
#[derive(Clone, Copy, Default)]
struct Cut {
    ctrl: usize,
    diff: usize,
    extra: usize,
}

/// Splits entries so that no frame makes more than `limit` new bytes, and encodes control.
/// Returns the control stream and the frame ends. Splitting keeps the meaning: (a, 0, 0)
/// followed by (b, c, s) does what (a + b, c, s) does.
fn plan(patch: &Patch, limit: u64) -> (Vec<u8>, Vec<Cut>) {
    let mut ctrl = Vec::new();
    let mut cuts = Vec::new();
    let (mut diff, mut extra, mut room) = (0usize, 0usize, limit);
    let emit = |ctrl: &mut Vec<u8>, e: Entry| {
        write_varint(ctrl, e.mix);
        write_varint(ctrl, e.copy);
        write_varint(ctrl, zigzag(e.seek));
    };
    for entry in &patch.entries {
        let (mut mix, mut copy) = (entry.mix, entry.copy);
        loop {
            let m = mix.min(room);
            let c = copy.min(room - m);
            let last = m == mix && c == copy;
            emit(
                &mut ctrl,
                Entry {
                    mix: m,
                    copy: c,
                    seek: if last { entry.seek } else { 0 },
                },
            );
            (mix, copy, room) = (mix - m, copy - c, room - m - c);
            diff += m as usize;
            extra += c as usize;
            if room == 0 || ctrl.len() - cuts.last().map_or(0, |c: &Cut| c.ctrl) >= CTRL_TARGET {
                cuts.push(Cut {
                    ctrl: ctrl.len(),
                    diff,
                    extra,
                });
                room = limit;
            }
            if last {
                break;
            }
        }
    }
    if cuts.last().is_none_or(|c| c.ctrl != ctrl.len()) {
        cuts.push(Cut {
            ctrl: ctrl.len(),
            diff,
            extra,
        });
    }
    (ctrl, cuts)
}

/// Appends the zero-run coding of `data`.
fn zero_run_encode(data: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < data.len() {
        let zeros = data[i..].iter().take_while(|&&b| b == 0).count();
        let lit = data[i + zeros..].iter().take_while(|&&b| b != 0).count();
        write_varint(out, zeros as u64);
        write_varint(out, lit as u64);
        out.extend_from_slice(&data[i + zeros..i + zeros + lit]);
        i += zeros + lit;
    }
}

/// Expands zero-run coded `coded` into `out` (cleared first), at most `limit` bytes.
fn zero_run_decode(mut coded: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), ApplyError> {
    out.clear();
    let bad = || ApplyError::corrupt("bad zero-run coding");
    while !coded.is_empty() {
        let zeros = read_varint(&mut coded).ok().flatten().ok_or_else(bad)?;
        let lit = read_varint(&mut coded).ok().flatten().ok_or_else(bad)?;
        if zeros.saturating_add(lit) > (limit - out.len()) as u64 || lit > coded.len() as u64 {
            return Err(bad());
        }
        out.resize(out.len() + zeros as usize, 0);
        out.extend_from_slice(&coded[..lit as usize]);
        coded = &coded[lit as usize..];
    }
    Ok(())
}

/// Compresses one stream into one chunk per frame; falls back to stored chunks when
/// compressing does not make it smaller.
fn chunks(
    codec: ChunkCodec,
    data: &[u8],
    ends: &[usize],
) -> io::Result<(ChunkCodec, Vec<Vec<u8>>)> {
    let slices = || {
        let mut start = 0;
        ends.iter().map(move |&end| {
            let slice = &data[start..end];
            start = end;
            slice
        })
    };
    let mut enc = ChunkEncoder::new(codec, data.len())?;
    let packed = slices()
        .map(|s| enc.chunk(s))
        .collect::<io::Result<Vec<_>>>()?;
    if packed.iter().map(Vec::len).sum::<usize>() < data.len() {
        Ok((codec, packed))
    } else {
        Ok((ChunkCodec::Stored, slices().map(<[u8]>::to_vec).collect()))
    }
}

fn codec_bytes(codec: ChunkCodec) -> [u8; 2] {
    match codec {
        ChunkCodec::Stored => [0, 0],
        ChunkCodec::Lzma { dict_log, .. } => [1, dict_log],
        ChunkCodec::Zstd => [2, 0],
    }
}

fn codec_from_bytes(b: [u8; 2], zstd: bool) -> Result<ChunkCodec, ApplyError> {
    match (b, zstd) {
        ([0, 0], _) => Ok(ChunkCodec::Stored),
        ([1, dict_log], false) if (12..=LZMA_MAX_DICT_LOG).contains(&dict_log) => {
            Ok(ChunkCodec::Lzma {
                dict_log,
                lc: 0,
                pb: 0,
            })
        }
        ([2, 0], true) => Ok(ChunkCodec::Zstd),
        _ => Err(ApplyError::corrupt(format!(
            "stream codec {b:?} not allowed here"
        ))),
    }
}

/// Encodes `patch` in the split form, with LZMA (`zstd == false`) or zstd chunks.
pub fn encode(
    patch: &Patch,
    zstd: bool,
    progress: &mut dyn Progress,
) -> Result<Vec<u8>, DeltaError> {
    let limit = DEFAULT_FRAME_LIMIT;
    let (ctrl, cuts) = plan(patch, limit.into());
    // Diffs of images over 1 MiB (`ZERO_RUN_FROM`) are zero-run coded: LZMA spends most of
    // its time (and hundreds of bytes per megabyte) on long zero runs, while the coded form
    // is 10x faster to compress and only a few percent larger (docs/BENCHMARKS.md). The
    // patch already holds them coded; each frame's part is re-coded on its own.
    let zero_run = patch.zero_run;
    let (diff, diff_ends) = if zero_run {
        let mut coded = Vec::with_capacity(patch.diff.len() + cuts.len() * 8);
        let mut ends = Vec::with_capacity(cuts.len());
        let (mut start, mut reader, mut plain) = (0, patch.diff_reader(), Vec::new());
        for cut in &cuts {
            plain.clear();
            reader.take(cut.diff - start, &mut plain);
            zero_run_encode(&plain, &mut coded);
            ends.push(coded.len());
            start = cut.diff;
        }
        (std::borrow::Cow::Owned(coded), ends)
    } else {
        (
            std::borrow::Cow::Borrowed(&patch.diff[..]),
            cuts.iter().map(|c| c.diff).collect(),
        )
    };
    let dict = |len: usize| log2_covering(len, 12, LZMA_MAX_DICT_LOG.into()) as u8;
    // lc/pb per stream, measured on the corpus: control and plain diff bytes have no
    // useful literal context; zero-run coded diffs lose their alignment, so pb = 0 and a
    // little literal context win; extra bytes are like code and data (xz defaults).
    let lzma_or_zstd = |len: usize, lc: u8, pb: u8| {
        if zstd {
            ChunkCodec::Zstd
        } else {
            ChunkCodec::Lzma {
                dict_log: dict(len),
                lc,
                pb,
            }
        }
    };
    let (diff_lc, diff_pb) = if zero_run { (2, 0) } else { (0, 2) };
    progress.start(
        Step::Compress,
        (ctrl.len() + diff.len() + patch.extra.len()) as u64,
    );
    let ctrl_ends: Vec<usize> = cuts.iter().map(|c| c.ctrl).collect();
    let (c_codec, c) = chunks(lzma_or_zstd(ctrl.len(), 0, 2), &ctrl, &ctrl_ends)?;
    progress.update(ctrl.len() as u64);
    if progress.should_stop() {
        return Err(DeltaError::Stopped);
    }
    let (d_codec, d) = chunks(
        lzma_or_zstd(diff.len(), diff_lc, diff_pb),
        &diff,
        &diff_ends,
    )?;
    progress.update((ctrl.len() + diff.len()) as u64);
    if progress.should_stop() {
        return Err(DeltaError::Stopped);
    }
    let extra_ends: Vec<usize> = cuts.iter().map(|c| c.extra).collect();
    let (e_codec, e) = chunks(
        lzma_or_zstd(patch.extra.len(), 3, 2),
        &patch.extra,
        &extra_ends,
    )?;

    let mut out = vec![VERSION];
    for codec in [c_codec, d_codec, e_codec] {
        out.extend_from_slice(&codec_bytes(codec));
    }
    out.push(u8::from(zero_run));
    out.extend_from_slice(&limit.to_be_bytes());
    for ((c, d), e) in c.iter().zip(&d).zip(&e) {
        for chunk in [c, d, e] {
            write_varint(&mut out, chunk.len() as u64);
        }
        for chunk in [c, d, e] {
            out.extend_from_slice(chunk);
        }
    }
    Ok(out)
}

/// Applies a split patch read from `input`, writing the new image to `out`.
/// `zstd` must match the encoding. Returns the number of bytes written.
pub fn apply(
    old: &[u8],
    zstd: bool,
    input: &mut impl Read,
    out: impl Write,
) -> Result<u64, ApplyError> {
    let mut head = [0u8; 12];
    input.read_exact(&mut head).map_err(ApplyError::Input)?;
    if head[0] != VERSION {
        return Err(ApplyError::corrupt(format!(
            "split format version {}",
            head[0]
        )));
    }
    let zero_run = match head[7] {
        0 => false,
        1 => true,
        other => return Err(ApplyError::corrupt(format!("diff form {other}"))),
    };
    let limit = u32::from_be_bytes(head[8..12].try_into().expect("4 bytes"));
    if limit == 0 || limit > MAX_FRAME_LIMIT {
        return Err(ApplyError::corrupt(format!(
            "frame limit {limit} out of range"
        )));
    }
    let mut decoders = Vec::with_capacity(3);
    for i in 0..3 {
        let codec = codec_from_bytes([head[1 + 2 * i], head[2 + 2 * i]], zstd)?;
        decoders.push(ChunkDecoder::new(codec).map_err(ApplyError::Input)?);
    }
    let limit = limit as usize;
    // Zero-run coding can be up to 1.5x longer than what it codes, plus varint slack.
    let limits = [
        MAX_CTRL,
        if zero_run { limit * 2 + 16 } else { limit },
        limit,
    ];
    let mut compressed: [Vec<u8>; 3] = Default::default();
    let mut plain: [Vec<u8>; 3] = Default::default();
    let mut expanded = Vec::new();
    let mut patcher = Patcher::new(old, out);

    loop {
        let mut lens = [0usize; 3];
        for (i, len) in lens.iter_mut().enumerate() {
            let v = match read_varint(input).map_err(ApplyError::Input)? {
                Some(v) => v,
                None if i == 0 => {
                    let n = patcher.written();
                    patcher.finish()?;
                    return Ok(n);
                }
                None => return Err(ApplyError::Input(io::ErrorKind::UnexpectedEof.into())),
            };
            if v > (limits[i] + CHUNK_SLACK) as u64 {
                return Err(ApplyError::corrupt("chunk larger than the frame limit"));
            }
            *len = v as usize;
        }
        for i in 0..3 {
            compressed[i].resize(lens[i], 0);
            input
                .read_exact(&mut compressed[i])
                .map_err(ApplyError::Input)?;
            decoders[i]
                .decode(&compressed[i], &mut plain[i], limits[i])
                .map_err(ApplyError::Input)?;
        }
        let [ctrl, diff, extra] = &plain;
        let diff = if zero_run {
            zero_run_decode(diff, &mut expanded, limit)?;
            &expanded
        } else {
            diff
        };
        let (mut ctrl, mut diff, mut extra) = (ctrl.as_slice(), diff.as_slice(), extra.as_slice());
        let start = patcher.written();
        while !ctrl.is_empty() {
            let mut field = || {
                read_varint(&mut ctrl)
                    .ok()
                    .flatten()
                    .ok_or_else(|| ApplyError::corrupt("truncated control entry"))
            };
            let entry = Entry {
                mix: field()?,
                copy: field()?,
                seek: unzigzag(field()?),
            };
            if entry.mix > diff.len() as u64 || entry.copy > extra.len() as u64 {
                return Err(ApplyError::corrupt("entry reads past its frame"));
            }
            patcher.apply(entry, &mut diff, &mut extra)?;
        }
        if !diff.is_empty() || !extra.is_empty() || patcher.written() - start > limit as u64 {
            return Err(ApplyError::corrupt(
                "frame data does not match its control entries",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::delta::diff::diff;
    use crate::package::progress::NoProgress;

    #[test]
    fn zero_run_coding_round_trips_and_respects_the_limit() {
        let data = [0, 0, 0, 5, 6, 0, 7, 0, 0];
        let mut coded = Vec::new();
        zero_run_encode(&data, &mut coded);
        assert_eq!(coded, [3, 2, 5, 6, 1, 1, 7, 2, 0]);
        let mut out = Vec::new();
        zero_run_decode(&coded, &mut out, 9).unwrap();
        assert_eq!(out, data);
        assert!(zero_run_decode(&coded, &mut out, 8).is_err());
    }

    #[test]
    fn incompressible_streams_are_stored() {
        let old: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 256) as u8).collect();
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let noise: Vec<u8> = (0..20_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        let new = [old.clone(), noise].concat();
        let patch = diff(&old, &new, &mut NoProgress).unwrap();
        let bytes = encode(&patch, false, &mut NoProgress).unwrap();
        assert_eq!(&bytes[5..7], &[0, 0], "extra stream stored");
        let mut out = Vec::new();
        apply(&old, false, &mut bytes.as_slice(), &mut out).unwrap();
        assert_eq!(out, new);
    }

    #[test]
    fn zigzag_round_trips() {
        for v in [0i64, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
    }

    #[test]
    fn planning_splits_long_entries_without_changing_the_result() {
        let patch = Patch {
            entries: vec![
                Entry {
                    mix: 10,
                    copy: 7,
                    seek: -3,
                },
                Entry {
                    mix: 2,
                    copy: 0,
                    seek: 5,
                },
            ],
            diff: vec![0; 12],
            diff_len: 12,
            extra: vec![9; 7],
            ..Patch::default()
        };
        let (ctrl, cuts) = plan(&patch, 4);
        // 19 new bytes at 4 per frame: 5 frames.
        assert_eq!(cuts.len(), 5);
        assert_eq!(cuts.last().unwrap().diff, 12);
        assert_eq!(cuts.last().unwrap().extra, 7);
        let mut entries = Vec::new();
        let mut c = ctrl.as_slice();
        while let Some(mix) = read_varint(&mut c).unwrap() {
            let copy = read_varint(&mut c).unwrap().unwrap();
            let seek = unzigzag(read_varint(&mut c).unwrap().unwrap());
            entries.push((mix, copy, seek));
        }
        assert!(entries.iter().all(|&(m, c, _)| m + c <= 4));
        assert_eq!(entries.iter().map(|e| e.2).sum::<i64>(), 2);
        assert_eq!(entries.iter().map(|e| e.0 + e.1).sum::<u64>(), 19);
    }

    #[test]
    fn round_trips_across_many_frames() {
        let old: Vec<u8> = (0..3_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mut new = old.clone();
        for i in (0..new.len()).step_by(10_007) {
            new[i] ^= 0x55;
        }
        new.splice(1_000_000..1_000_000, b"inserted".repeat(1000));
        let patch = diff(&old, &new, &mut NoProgress).unwrap();
        for zstd in [false, true] {
            let bytes = encode(&patch, zstd, &mut NoProgress).unwrap();
            let mut out = Vec::new();
            let n = apply(&old, zstd, &mut bytes.as_slice(), &mut out).unwrap();
            assert_eq!(n as usize, new.len());
            assert!(out == new, "zstd={zstd}");
        }
    }

    #[test]
    fn rejects_a_frame_cut_short() {
        let old = vec![7u8; 10_000];
        let mut new = old.clone();
        new[5000] = 1;
        let patch = diff(&old, &new, &mut NoProgress).unwrap();
        let bytes = encode(&patch, false, &mut NoProgress).unwrap();
        let cut = &bytes[..bytes.len() - 1];
        assert!(apply(&old, false, &mut &cut[..], Vec::new()).is_err());
    }
}
