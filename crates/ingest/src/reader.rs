//! [`OrderReader`]: opens a file, sniffs it, and streams orders out of it one at a time.
//!
//! Rows of one order must be adjacent (every export we know writes them so). The reader keeps only the
//! order being assembled in memory, so files larger than memory work. A row that cannot be read rejects the
//! order it belongs to: the [`Rejected`] names the line of the bad row and the column, and the other rows of
//! that order are passed over. If an order's rows are *not* adjacent, each run of rows becomes an order with
//! the same external id; the store keeps the first and ignores the others, so they are not merged.

use std::collections::VecDeque;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use chrono_tz::Tz;
use csv::StringRecord;
use regulars_core::ImportedOrder;

use crate::dates::{SlashDateOrder, TimestampParser, sniff_slash_order};
use crate::detect::{Delimiter, first_line, sniff_delimiter, sniff_format};
use crate::error::IngestError;
use crate::format::Format;
use crate::formats::{self, Assemble};
use crate::source::{self, Input, Progress};

/// A row (or an order) that could not be read, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line_number}: {reason}")]
pub struct Rejected {
    /// 1-based line of the file, counting the header (the line where the bad row starts).
    pub line_number: u64,
    /// What is wrong, starting with the column: `quantity: must be at least 1, got -2`.
    pub reason: String,
}

/// How to read a file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReadOptions {
    pub format: Format,
    /// The time zone of timestamps written without one; UTC by default.
    pub time_zone: Option<Tz>,
    /// The order of `a/b/YYYY` dates; `None` sniffs it from the first 64 KiB (see [`crate::dates`]).
    pub slash_date_order: Option<SlashDateOrder>,
}

/// Counts at the end of a file (or so far).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadSummary {
    /// Data rows read (after the header).
    pub rows: u64,
    /// Orders produced.
    pub orders: u64,
    /// Rejections produced (each an order, or a row that belongs to no order).
    pub rejected: u64,
    /// Orders passed over on purpose: cancelled or voided orders, failed payments (see each format).
    pub skipped: u64,
}

/// The format and delimiter a reader settled on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub format: Format,
    pub delimiter: Delimiter,
    pub slash_date_order: SlashDateOrder,
}

impl fmt::Display for Detected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?}-separated)", self.format.name(), self.delimiter)
    }
}

/// Streams [`ImportedOrder`]s out of an export, or a [`Rejected`] for each order that cannot be read.
///
/// The iterator ends at the end of the file, or at the first error that makes the rest of the file
/// unreadable (a truncated `.gz`, a disk error): that error is yielded as a [`Rejected`] at the first line of
/// the order being read when it happened (that order is not yielded, it may be incomplete) and also returned
/// by [`OrderReader::finish`], which callers should always call.
pub struct OrderReader {
    records: Records,
    assembler: Box<dyn Assemble>,
    record: StringRecord,
    key: String,
    current_key: String,
    current_line: u64,
    in_order: bool,
    failed: Option<Rejected>,
    pending: VecDeque<Result<ImportedOrder, Rejected>>,
    summary: ReadSummary,
    progress: Progress,
    detected: Detected,
    fatal: Option<IngestError>,
    done: bool,
}

impl OrderReader {
    /// Opens a file (gzip-compressed when it starts with the gzip magic bytes) and reads its header.
    pub fn open(path: impl AsRef<Path>, options: &ReadOptions) -> Result<Self, IngestError> {
        Self::new(source::open_path(path.as_ref())?, options)
    }

    /// Reads from any reader (gzip-compressed or not); [`Progress::total_bytes`] is then unknown.
    pub fn from_reader(reader: impl Read + Send + 'static, options: &ReadOptions) -> Result<Self, IngestError> {
        Self::new(source::open_reader(reader, Progress::new(None))?.input, options)
    }

    fn new(input: Input, options: &ReadOptions) -> Result<Self, IngestError> {
        let Input { sample, stream, progress } = input;
        let line = first_line(&sample);
        if line.trim().is_empty() {
            return Err(IngestError::Empty);
        }
        let mut delimiter = sniff_delimiter(line);
        let format = match &options.format {
            Format::Auto => {
                sniff_format(line, delimiter).ok_or_else(|| IngestError::UnknownFormat { header: line.to_owned() })?
            }
            other => other.clone(),
        };
        if format == Format::Cdnow {
            delimiter = Delimiter::Whitespace;
        } else if delimiter == Delimiter::Whitespace {
            delimiter = Delimiter::Comma;
        }
        let slash_date_order = options
            .slash_date_order
            .or_else(|| sniff_sample_dates(&sample, delimiter))
            .unwrap_or(SlashDateOrder::DayFirst);
        let dates = TimestampParser { slash_order: slash_date_order, time_zone: options.time_zone.unwrap_or(Tz::UTC) };
        let (records, assembler): (Records, Box<dyn Assemble>) = if delimiter == Delimiter::Whitespace {
            let records = Records::Whitespace(WhitespaceRecords::new(stream));
            (records, Box::new(formats::cdnow::CdnowAssembler::new(dates)))
        } else {
            let mut reader = csv::ReaderBuilder::new()
                .delimiter(delimiter.byte())
                .flexible(true)
                .has_headers(true)
                .buffer_capacity(256 * 1024)
                .from_reader(stream);
            let header = reader.headers().map_err(csv_fatal)?.clone();
            let header = formats::Header::new(&header);
            let assembler: Box<dyn Assemble> = match &format {
                Format::Generic => Box::new(formats::generic::GenericAssembler::generic(&header, dates)?),
                Format::Mapping(mapping) => {
                    Box::new(formats::generic::GenericAssembler::mapped(&header, mapping, dates)?)
                }
                Format::Shopify => Box::new(formats::shopify::ShopifyAssembler::new(&header, dates)?),
                Format::WooCommerce => Box::new(formats::woocommerce::WooAssembler::new(&header, dates)?),
                Format::Stripe => Box::new(formats::stripe::StripeAssembler::new(&header, dates)?),
                Format::Auto | Format::Cdnow => unreachable!("resolved above"),
            };
            (Records::Csv(reader), assembler)
        };
        Ok(OrderReader {
            records,
            assembler,
            record: StringRecord::new(),
            key: String::new(),
            current_key: String::new(),
            current_line: 0,
            in_order: false,
            failed: None,
            pending: VecDeque::new(),
            summary: ReadSummary::default(),
            progress,
            detected: Detected { format, delimiter, slash_date_order },
            fatal: None,
            done: false,
        })
    }

    /// A handle to the progress counters, to poll from another thread.
    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }

    /// The format, delimiter and date order in use.
    pub fn detected(&self) -> &Detected {
        &self.detected
    }

    /// Counts so far.
    pub fn summary(&self) -> ReadSummary {
        self.summary
    }

    /// The counts, or the error that stopped reading before the end of the file.
    pub fn finish(self) -> Result<ReadSummary, IngestError> {
        match self.fatal {
            Some(error) => Err(error),
            None => Ok(self.summary),
        }
    }

    /// Closes the order being assembled, queueing its result.
    fn close_order(&mut self) {
        if !self.in_order {
            return;
        }
        self.in_order = false;
        let result = match self.failed.take() {
            Some(rejected) => Err(rejected),
            None => match self.assembler.finish(self.current_line) {
                Ok(Some(order)) => Ok(order),
                Ok(None) => {
                    self.summary.skipped += 1;
                    return;
                }
                Err(error) => Err(Rejected { line_number: self.current_line, reason: error.to_string() }),
            },
        };
        self.pending.push_back(result);
    }

    fn step(&mut self) {
        match self.records.read(&mut self.record) {
            Ok(None) => {
                self.close_order();
                self.done = true;
            }
            Err(RecordError::Fatal { line_number, error }) => {
                // The order being assembled may have lost rows to the damage: it is not imported, and the
                // rejection points at its first line.
                let line_number = if self.in_order { self.current_line } else { line_number };
                self.in_order = false;
                self.failed = None;
                let reason = format!("cannot read the file from this order on: {error}");
                self.pending.push_back(Err(Rejected { line_number, reason }));
                self.fatal = Some(error);
                self.done = true;
            }
            Err(RecordError::Row { line_number, message }) => {
                self.summary.rows += 1;
                self.close_order();
                self.pending.push_back(Err(Rejected { line_number, reason: message }));
            }
            Ok(Some(line_number)) => {
                self.summary.rows += 1;
                if self.summary.rows.is_multiple_of(4096) {
                    self.progress.set_rows_read(self.summary.rows);
                }
                self.key.clear();
                if let Err(error) = self.assembler.key(&self.record, &mut self.key) {
                    self.close_order();
                    self.pending.push_back(Err(Rejected { line_number, reason: error.to_string() }));
                    return;
                }
                let same_order = self.in_order && self.key == self.current_key;
                if !same_order {
                    self.close_order();
                    std::mem::swap(&mut self.key, &mut self.current_key);
                    self.current_line = line_number;
                    self.in_order = true;
                }
                if self.failed.is_none()
                    && let Err(error) = self.assembler.add(line_number, &self.record, !same_order)
                {
                    self.failed = Some(Rejected { line_number, reason: error.to_string() });
                }
            }
        }
    }
}

impl Iterator for OrderReader {
    type Item = Result<ImportedOrder, Rejected>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                match &item {
                    Ok(_) => self.summary.orders += 1,
                    Err(_) => self.summary.rejected += 1,
                }
                return Some(item);
            }
            if self.done {
                self.progress.set_rows_read(self.summary.rows);
                return None;
            }
            self.step();
        }
    }
}

/// Looks for `a/b/YYYY` values with a number above 12 in the sampled rows.
fn sniff_sample_dates(sample: &[u8], delimiter: Delimiter) -> Option<SlashDateOrder> {
    if delimiter == Delimiter::Whitespace {
        return None;
    }
    let complete = sample.iter().rposition(|&b| b == b'\n').map_or(sample, |end| &sample[..end]);
    let mut reader =
        csv::ReaderBuilder::new().delimiter(delimiter.byte()).flexible(true).has_headers(true).from_reader(complete);
    let records: Vec<StringRecord> = reader.records().filter_map(Result::ok).collect();
    sniff_slash_order(records.iter().flat_map(|r| r.iter()))
}

fn csv_fatal(error: csv::Error) -> IngestError {
    let line_number = error.position().map_or(0, |p| p.line());
    match error.into_kind() {
        csv::ErrorKind::Io(io) => IngestError::Io(io),
        other => IngestError::ReadFailed { line_number, message: format!("{other:?}") },
    }
}

enum RecordError {
    /// This row cannot be read, the next may be.
    Row { line_number: u64, message: String },
    /// Nothing more can be read.
    Fatal { line_number: u64, error: IngestError },
}

/// Where records come from: a CSV parser, or whitespace-separated lines (CDNOW).
enum Records {
    Csv(csv::Reader<Box<dyn Read + Send>>),
    Whitespace(WhitespaceRecords),
}

impl Records {
    /// Reads the next record; returns its line number.
    fn read(&mut self, record: &mut StringRecord) -> Result<Option<u64>, RecordError> {
        match self {
            Records::Csv(reader) => match reader.read_record(record) {
                Ok(true) => Ok(Some(record.position().map_or(0, |p| p.line()))),
                Ok(false) => Ok(None),
                Err(error) => {
                    let line_number = error.position().map_or(0, |p| p.line());
                    match error.kind() {
                        csv::ErrorKind::Utf8 { .. } => {
                            Err(RecordError::Row { line_number, message: "the row is not valid UTF-8".to_owned() })
                        }
                        _ => Err(RecordError::Fatal { line_number, error: csv_fatal(error) }),
                    }
                }
            },
            Records::Whitespace(lines) => lines.read(record),
        }
    }
}

/// Lines split at runs of spaces and tabs; a first line that does not start with a digit is a header and
/// is skipped.
struct WhitespaceRecords {
    reader: BufReader<Box<dyn Read + Send>>,
    line: Vec<u8>,
    line_number: u64,
}

impl WhitespaceRecords {
    fn new(stream: Box<dyn Read + Send>) -> Self {
        WhitespaceRecords { reader: BufReader::with_capacity(256 * 1024, stream), line: Vec::new(), line_number: 0 }
    }

    fn read(&mut self, record: &mut StringRecord) -> Result<Option<u64>, RecordError> {
        loop {
            self.line.clear();
            let n = self.reader.read_until(b'\n', &mut self.line).map_err(|error| RecordError::Fatal {
                line_number: self.line_number + 1,
                error: IngestError::Io(error),
            })?;
            if n == 0 {
                return Ok(None);
            }
            self.line_number += 1;
            let Ok(text) = std::str::from_utf8(&self.line) else {
                return Err(RecordError::Row {
                    line_number: self.line_number,
                    message: "the line is not valid UTF-8".to_owned(),
                });
            };
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            if self.line_number == 1 && !text.starts_with(|c: char| c.is_ascii_digit()) {
                continue;
            }
            record.clear();
            for word in text.split_ascii_whitespace() {
                record.push_field(word);
            }
            return Ok(Some(self.line_number));
        }
    }
}
