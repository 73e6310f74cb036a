//! Streaming patch application: old image in memory, new image out through `Write`.

use std::io::{Read, Write};

use super::{ApplyError, Entry};

/// Bytes moved per step; with the old image this is all the memory applying needs.
pub const WINDOW: usize = 64 * 1024;

/// Applies entries one by one, pulling diff and extra bytes from readers.
pub struct Patcher<'a, W: Write> {
    old: &'a [u8],
    old_pos: u64,
    out: W,
    buf: Vec<u8>,
    written: u64,
}

impl<'a, W: Write> Patcher<'a, W> {
    pub fn new(old: &'a [u8], out: W) -> Self {
        Self {
            old,
            old_pos: 0,
            out,
            buf: vec![0; WINDOW],
            written: 0,
        }
    }

    /// Bytes of new image written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Applies one entry, reading `entry.mix` bytes from `diff` and `entry.copy` from `extra`.
    pub fn apply(
        &mut self,
        entry: Entry,
        diff: &mut impl Read,
        extra: &mut impl Read,
    ) -> Result<(), ApplyError> {
        self.mix(entry.mix, diff)?;
        self.copy(entry.copy, extra)?;
        self.seek(entry.seek)
    }

    /// Writes `len` bytes of old image plus diff bytes, advancing the old cursor.
    pub fn mix(&mut self, len: u64, diff: &mut impl Read) -> Result<(), ApplyError> {
        let end = self
            .old_pos
            .checked_add(len)
            .filter(|&end| end <= self.old.len() as u64)
            .ok_or_else(|| ApplyError::corrupt("mix reads past the end of the old image"))?;
        let mut at = self.old_pos as usize;
        let mut left = len;
        while left > 0 {
            let n = left.min(WINDOW as u64) as usize;
            diff.read_exact(&mut self.buf[..n])
                .map_err(ApplyError::Input)?;
            for (d, o) in self.buf[..n].iter_mut().zip(&self.old[at..at + n]) {
                *d = d.wrapping_add(*o);
            }
            self.emit(n)?;
            at += n;
            left -= n as u64;
        }
        self.old_pos = end;
        Ok(())
    }

    /// Writes `len` literal bytes.
    pub fn copy(&mut self, len: u64, extra: &mut impl Read) -> Result<(), ApplyError> {
        let mut left = len;
        while left > 0 {
            let n = left.min(WINDOW as u64) as usize;
            extra
                .read_exact(&mut self.buf[..n])
                .map_err(ApplyError::Input)?;
            self.emit(n)?;
            left -= n as u64;
        }
        Ok(())
    }

    /// Moves the old cursor. It may point past the old image as long as nothing is mixed
    /// from there; it may not go below zero.
    pub fn seek(&mut self, by: i64) -> Result<(), ApplyError> {
        let moved = (self.old_pos as i64)
            .checked_add(by)
            .filter(|&p| p >= 0)
            .ok_or_else(|| ApplyError::corrupt("seek before the start of the old image"))?;
        self.old_pos = moved as u64;
        Ok(())
    }

    fn emit(&mut self, n: usize) -> Result<(), ApplyError> {
        self.out
            .write_all(&self.buf[..n])
            .map_err(ApplyError::Output)?;
        self.written += n as u64;
        Ok(())
    }

    /// Flushes and hands back the writer.
    pub fn finish(mut self) -> Result<W, ApplyError> {
        self.out.flush().map_err(ApplyError::Output)?;
        Ok(self.out)
    }
}
