//! Bulk device import: a streamed NDJSON or CSV body, one device per line, provisioned in
//! batches of `batch_size` lines. A batch is written in one transaction, whole, or not at
//! all when any of its lines is bad (then the report names every bad line); batches before
//! and after it are unaffected. Only one batch is held in memory at a time, so the body may
//! hold millions of devices.
//!
//! Line numbers count every line of the body from 1, the CSV header and blank lines
//! included; blank lines are skipped and belong to no batch.

mod lines;
mod records;

use std::collections::HashMap;
use std::pin::pin;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::Serialize;

use crate::store::{BatchOutcome, NewDevice, Store, StoreError};
use lines::{Line, LineSplitter};
use records::{CsvHeader, Refusal, json_device};

/// Largest `batch_size`.
pub const MAX_BATCH_SIZE: usize = 10_000;
/// The `batch_size` of an import that names none.
pub const DEFAULT_BATCH_SIZE: usize = 1000;
/// Bad lines listed in a report; the rest are counted.
pub const MAX_LISTED_ERRORS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// `application/x-ndjson`: one JSON object per line, the shape of `POST /api/v1/devices`.
    Ndjson,
    /// `text/csv`: a header row, then one record per line.
    Csv,
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub format: ImportFormat,
    /// Device lines per batch (and per transaction), 1 to [`MAX_BATCH_SIZE`].
    pub batch_size: usize,
    /// Body bytes read at most.
    pub max_bytes: u64,
    /// Bytes per line at most, its line ending excluded.
    pub max_line_bytes: usize,
}

/// A bad line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LineError {
    pub line: u64,
    /// The line's DevId, when it could be read.
    pub dev_id: Option<String>,
    pub message: String,
}

/// The lines one rejected batch spanned: none of its devices were provisioned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LineSpan {
    pub first_line: u64,
    pub last_line: u64,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// Lines read, the CSV header and blank lines included.
    pub lines: u64,
    /// Devices provisioned.
    pub imported: u64,
    pub batches_committed: u64,
    pub batches_rejected: u64,
    /// The lines of the rejected batches (at most 1000 batches listed).
    pub rejected_batches: Vec<LineSpan>,
    /// The bad lines in order (at most 1000 listed)…
    pub errors: Vec<LineError>,
    /// …and how many more there were.
    pub errors_not_listed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The CSV header row is unusable; nothing was imported.
    #[error("{0}")]
    Header(String),
    /// The body is longer than the bound; the batches before the one being read when it was
    /// crossed are committed (the report says how many), the rest is not read.
    #[error("the body is longer than {limit} bytes")]
    TooLarge { limit: u64, report: ImportReport },
    /// The body broke off; the report covers the batches committed before.
    #[error("the body could not be read: {reason}")]
    Body {
        reason: String,
        report: ImportReport,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The batch being gathered.
#[derive(Default)]
struct Batch {
    /// Device lines in it, good or bad.
    lines: usize,
    first_line: u64,
    last_line: u64,
    devices: Vec<NewDevice>,
    device_lines: Vec<u64>,
    /// DevId → its line, to refuse the same DevId twice in one batch.
    seen: HashMap<String, u64>,
    errors: Vec<LineError>,
}

struct Run<'a> {
    store: &'a Store,
    options: &'a ImportOptions,
    header: Option<CsvHeader>,
    line: u64,
    batch: Batch,
    report: ImportReport,
}

impl Run<'_> {
    fn error(&mut self, dev_id: Option<String>, message: String) {
        let line = self.line;
        self.batch.errors.push(LineError {
            line,
            dev_id,
            message,
        });
    }

    async fn line(&mut self, line: Line) -> Result<(), ImportError> {
        self.line += 1;
        self.report.lines += 1;
        let text = match line {
            Line::TooLong => {
                let max = self.options.max_line_bytes;
                self.count_in_batch();
                self.error(None, format!("the line is longer than {max} bytes"));
                return self.flush_if_full().await;
            }
            Line::Text(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    self.count_in_batch();
                    self.error(None, "the line is not UTF-8".into());
                    return self.flush_if_full().await;
                }
            },
        };
        if text.trim().is_empty() {
            return Ok(());
        }
        let request = match (self.options.format, &self.header) {
            (ImportFormat::Csv, None) => {
                self.header = Some(CsvHeader::parse(&text).map_err(ImportError::Header)?);
                return Ok(());
            }
            (ImportFormat::Csv, Some(header)) => header.device(&text),
            (ImportFormat::Ndjson, _) => json_device(&text),
        };
        self.count_in_batch();
        let checked = request.and_then(|r| {
            let dev_id = r.dev_id.trim().to_owned();
            r.into_new_device().map_err(|message| Refusal {
                dev_id: Some(dev_id),
                message,
            })
        });
        match checked {
            Err(Refusal { dev_id, message }) => self.error(dev_id, message),
            Ok(device) => {
                if let Some(first) = self.batch.seen.get(&device.dev_id) {
                    let message = format!("dev_id is also on line {first} of this batch");
                    self.error(Some(device.dev_id), message);
                } else {
                    self.batch.seen.insert(device.dev_id.clone(), self.line);
                    self.batch.devices.push(device);
                    self.batch.device_lines.push(self.line);
                }
            }
        }
        self.flush_if_full().await
    }

    fn count_in_batch(&mut self) {
        if self.batch.lines == 0 {
            self.batch.first_line = self.line;
        }
        self.batch.lines += 1;
        self.batch.last_line = self.line;
    }

    async fn flush_if_full(&mut self) -> Result<(), ImportError> {
        if self.batch.lines >= self.options.batch_size {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes the gathered batch, or rejects it whole.
    async fn flush(&mut self) -> Result<(), ImportError> {
        let mut batch = std::mem::take(&mut self.batch);
        if batch.lines == 0 {
            return Ok(());
        }
        let dev_ids: Vec<&str> = batch.devices.iter().map(|d| d.dev_id.as_str()).collect();
        let taken = if batch.errors.is_empty() {
            match self
                .store
                .devices()
                .import_batch(&batch.devices, chrono::Utc::now())
                .await?
            {
                BatchOutcome::Imported(n) => {
                    self.report.imported += n;
                    self.report.batches_committed += 1;
                    return Ok(());
                }
                BatchOutcome::Taken(dev_ids) => dev_ids,
            }
        } else {
            // Rejected already: name its taken DevIds too, so that one report lists every
            // line to fix.
            self.store.devices().taken_dev_ids(&dev_ids).await?
        };
        for (device, line) in batch.devices.iter().zip(&batch.device_lines) {
            if taken.binary_search(&device.dev_id).is_ok() {
                batch.errors.push(LineError {
                    line: *line,
                    dev_id: Some(device.dev_id.clone()),
                    message: "a device with this dev_id is already provisioned".into(),
                });
            }
        }
        batch.errors.sort_by_key(|e| e.line);
        self.report.batches_rejected += 1;
        if self.report.rejected_batches.len() < MAX_LISTED_ERRORS {
            self.report.rejected_batches.push(LineSpan {
                first_line: batch.first_line,
                last_line: batch.last_line,
            });
        }
        for error in batch.errors {
            if self.report.errors.len() < MAX_LISTED_ERRORS {
                self.report.errors.push(error);
            } else {
                self.report.errors_not_listed += 1;
            }
        }
        Ok(())
    }
}

/// Reads the body to its end (or its bound) and provisions its devices batch by batch.
pub async fn import(
    store: &Store,
    body: impl Stream<Item = Result<Bytes, std::io::Error>>,
    options: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let started = std::time::Instant::now();
    let mut body = pin!(body);
    let mut splitter = LineSplitter::new(options.max_line_bytes);
    let mut run = Run {
        store,
        options,
        header: None,
        line: 0,
        batch: Batch::default(),
        report: ImportReport::default(),
    };
    let mut read: u64 = 0;
    let mut lines = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                return Err(ImportError::Body {
                    reason: e.to_string(),
                    report: run.report,
                });
            }
        };
        read += chunk.len() as u64;
        if read > options.max_bytes {
            return Err(ImportError::TooLarge {
                limit: options.max_bytes,
                report: run.report,
            });
        }
        splitter.push(&chunk, &mut lines);
        for line in lines.drain(..) {
            run.line(line).await?;
        }
    }
    if let Some(line) = splitter.finish() {
        run.line(line).await?;
    }
    if options.format == ImportFormat::Csv && run.header.is_none() {
        return Err(ImportError::Header("the CSV body has no header row".into()));
    }
    run.flush().await?;
    let report = run.report;
    if report.imported > 0 {
        // Campaigns select over these devices next: plan them for the table's new size.
        store.devices().analyze().await?;
    }
    tracing::info!(
        import.lines = report.lines,
        import.imported = report.imported,
        import.batches_committed = report.batches_committed,
        import.batches_rejected = report.batches_rejected,
        duration_ms = started.elapsed().as_millis() as u64,
        "device import finished"
    );
    Ok(report)
}
