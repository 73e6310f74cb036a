//! Streams a byte range of a local file with positional reads on the blocking pool,
//! one chunk read ahead.
//!
//! `tokio::fs` turns every small read into a blocking-pool round trip and seeks a
//! shared cursor; here each read is a `pread(2)` of a whole chunk (1 MiB by default)
//! into a fresh buffer handed out as `Bytes` without another copy, and the next read
//! is already running while the HTTP edge writes the previous chunk. The file handle
//! is shared, so concurrent range requests never contend on a cursor.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::task::JoinHandle;

use super::{BlobError, BlobStream};

struct Reader {
    file: Arc<File>,
    /// Next offset to schedule a read at.
    next: u64,
    end: u64,
    chunk: u64,
    pending: Option<JoinHandle<std::io::Result<Bytes>>>,
}

impl Reader {
    fn schedule(&mut self) {
        if self.next >= self.end {
            return;
        }
        let len = (self.end - self.next).min(self.chunk) as usize;
        let (file, at) = (self.file.clone(), self.next);
        self.next += len as u64;
        self.pending = Some(tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; len];
            file.read_exact_at(&mut buf, at)?;
            Ok(Bytes::from(buf))
        }));
    }
}

/// Bytes `range` of `file` (already checked to lie inside it), `chunk` bytes at a time.
pub(super) fn stream(file: File, range: Range<u64>, chunk: usize) -> BlobStream {
    let mut reader = Reader {
        file: Arc::new(file),
        next: range.start,
        end: range.end,
        chunk: chunk.max(1) as u64,
        pending: None,
    };
    reader.schedule();
    futures_util::stream::unfold(reader, |mut reader| async move {
        let pending = reader.pending.take()?;
        let result = match pending.await {
            Ok(Ok(bytes)) => {
                reader.schedule();
                Ok(bytes)
            }
            Ok(Err(err)) => Err(BlobError::Io(err)),
            Err(err) => Err(BlobError::Backend(format!("read task failed: {err}"))),
        };
        // After an error the stream ends: nothing more is scheduled.
        Some((result, reader))
    })
    .boxed()
}
