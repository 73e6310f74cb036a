//! The `bsdiff` crate's patch stream: per entry a 24-byte control block, diff bytes, extra bytes.
//!
//! Control values are 64-bit little-endian sign-magnitude integers (bit 63 = negative), in
//! the order mix length, copy length, seek. There is no header and no length: the stream
//! ends after the last entry. `bsdiff::patch` applies exactly this stream.

use std::io::{self, Read, Write};

use super::apply::Patcher;
use super::{ApplyError, Entry, Patch};

fn encode_offset(x: i64) -> [u8; 8] {
    if x >= 0 {
        x.to_le_bytes()
    } else {
        (x.unsigned_abs() | 1 << 63).to_le_bytes()
    }
}

fn decode_offset(b: [u8; 8]) -> Option<i64> {
    let v = u64::from_le_bytes(b);
    let magnitude = i64::try_from(v & !(1 << 63)).ok()?;
    Some(if v >> 63 == 1 { -magnitude } else { magnitude })
}

/// Writes `patch` in the interleaved form.
pub fn write(patch: &Patch, out: &mut impl Write) -> io::Result<()> {
    let (mut e, mut diff, mut mix) = (0usize, patch.diff_reader(), Vec::new());
    for entry in &patch.entries {
        let mut control = [0u8; 24];
        control[..8].copy_from_slice(&encode_offset(entry.mix as i64));
        control[8..16].copy_from_slice(&encode_offset(entry.copy as i64));
        control[16..].copy_from_slice(&encode_offset(entry.seek));
        out.write_all(&control)?;
        mix.clear();
        diff.take(entry.mix as usize, &mut mix);
        out.write_all(&mix)?;
        out.write_all(&patch.extra[e..e + entry.copy as usize])?;
        e += entry.copy as usize;
    }
    Ok(())
}

/// Reads a full control block, or `None` at a clean end of stream.
fn read_control(input: &mut impl Read) -> Result<Option<Entry>, ApplyError> {
    let mut buf = [0u8; 24];
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => {
                return Err(ApplyError::Input(io::ErrorKind::UnexpectedEof.into()));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ApplyError::Input(e)),
        }
    }
    let field = |i: usize| decode_offset(buf[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    let bad = || ApplyError::corrupt("control value out of range");
    let mix = field(0).filter(|v| *v >= 0).ok_or_else(bad)? as u64;
    let copy = field(1).filter(|v| *v >= 0).ok_or_else(bad)? as u64;
    let seek = field(2).ok_or_else(bad)?;
    Ok(Some(Entry { mix, copy, seek }))
}

/// Applies an interleaved patch read from `input`, writing the new image to `out`.
/// Returns the number of bytes written.
pub fn apply(old: &[u8], input: &mut impl Read, out: impl Write) -> Result<u64, ApplyError> {
    let mut patcher = Patcher::new(old, out);
    while let Some(entry) = read_control(input)? {
        // Diff and extra bytes of one entry follow each other in the same stream.
        patcher.mix(entry.mix, input)?;
        patcher.copy(entry.copy, input)?;
        patcher.seek(entry.seek)?;
    }
    let n = patcher.written();
    patcher.finish()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_sign_magnitude() {
        for v in [0i64, 1, -1, 255, -256, i64::MAX, -i64::MAX] {
            assert_eq!(decode_offset(encode_offset(v)), Some(v));
        }
        assert_eq!(encode_offset(-1), [1, 0, 0, 0, 0, 0, 0, 0x80]);
    }

    #[test]
    fn applies_a_bsdiff_crate_patch() {
        let old = b"abcdefghijklmnopqrstuvwxyz0123456789".repeat(20);
        let mut new = old.clone();
        new[100] = b'!';
        new.extend_from_slice(b"tail that is new");
        let mut patch = Vec::new();
        bsdiff::diff(&old, &new, &mut patch).unwrap();
        let mut out = Vec::new();
        let n = apply(&old, &mut patch.as_slice(), &mut out).unwrap();
        assert_eq!(out, new);
        assert_eq!(n, new.len() as u64);
    }

    #[test]
    fn rejects_a_cut_control_block_and_bad_reads() {
        let old = b"0123456789";
        let cut = [0u8; 10];
        let err = apply(old, &mut &cut[..], Vec::new()).unwrap_err();
        assert!(matches!(err, ApplyError::Input(e) if e.kind() == io::ErrorKind::UnexpectedEof));
        // mix of 11 bytes from a 10-byte old image
        let mut bad = Vec::new();
        bad.extend_from_slice(&encode_offset(11));
        bad.extend_from_slice(&encode_offset(0));
        bad.extend_from_slice(&encode_offset(0));
        bad.extend_from_slice(&[0; 11]);
        let err = apply(old, &mut bad.as_slice(), Vec::new()).unwrap_err();
        assert!(matches!(err, ApplyError::Corrupt(_)));
    }
}
