//! Order facts: what an analysis needs of an order (who bought, when, in which currency, for how much net of
//! refunds, which SKUs), and a fast parallel reader of them for large generic CSV files and CDNOW-format
//! purchase logs.
//!
//! [`facts_of`] takes the facts from an [`ImportedOrder`] of any reader. [`FactsReader`] reads an
//! uncompressed file in the [generic format](crate::generic) about four times faster than [`OrderReader`]
//! on one thread (and a CDNOW log, `customer date cds value`, as well), and in
//! parallel: it cuts the file into parts at order boundaries, parses the parts on the
//! rayon pool in chunks of 4 MiB, and builds nothing but the facts.
//!
//! **The same facts as the full reader, always.** The dedicated parser takes an order only when it is
//! certain that [`OrderReader`] accepts it and reads the same facts from it: it checks every field the full
//! reader checks, with the same functions (the customer's contact details once per customer and set of
//! values, the birthday against each order's date), and splits lines the way the `csv` crate does for the
//! lines it takes (fields plain or wholly quoted, `""` inside quotes, `\n` or `\r\n` line ends). When a
//! part holds anything else (a row the full reader rejects, a quote inside a plain field, text after a
//! closing quote, invalid UTF-8), that part is read again by an [`OrderReader`], which gives its orders
//! and rejects exactly as a sequential read does, since the part starts and ends at order boundaries.
//! When a line ends inside quotes (a field holding a line break) or a line holds a carriage return
//! outside quotes, lines are not records and the cuts cannot be trusted: [`FactsReader::read`] returns
//! `None`, and the caller reads the whole file with an [`OrderReader`].

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use hashbrown::{HashMap, HashSet};
use rayon::prelude::*;
use regulars_core::customer::{parse_birthday, parse_locale, parse_time_zone};
use regulars_core::order::{MAX_AMOUNT_MINOR, refund_share};
use regulars_core::text::check_bounded_text;
use regulars_core::{Currency, Email, ExternalId, ImportedOrder, OrderDraft, OrderLine, Phone, Quantity};

use crate::dates::TimestampParser;
use crate::detect::Delimiter;
use crate::error::IngestError;
use crate::format::Format;
use crate::formats::generic::parse_bool;
use crate::formats::{CurrencyCache, Header, parse_amount, parse_whole};
use crate::reader::{Detected, OrderReader, ReadOptions, ReadSummary, Rejected};
use crate::source::{Progress, SAMPLE_BYTES};

/// What an analysis takes from one order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrderFacts<'a> {
    /// The customer's external id (the lower-cased e-mail when the file gives no customer id).
    pub customer: &'a str,
    /// When the order was placed, in UTC.
    pub placed_at: NaiveDateTime,
    pub currency: Currency,
    /// The order's total less everything refunded on it, in minor units; never below zero.
    pub net_minor: i64,
    /// The SKUs of the order's lines, in line order.
    pub skus: &'a [&'a str],
    /// When given, a number for each of `skus`, the same for the same SKU in all the orders one sink
    /// receives and distinct for distinct SKUs, numbered from 0 in order of first appearance: a sink may
    /// keep what it derives from a SKU by its number instead of looking the text up.
    pub sku_ids: Option<&'a [u32]>,
}

/// Receives the facts of orders, in file order.
pub trait FactsSink {
    fn order(&mut self, facts: &OrderFacts<'_>);

    /// Called by [`FactsReader`] before the orders of a part, to make room.
    fn part(&mut self, room: PartRoom) {
        let _ = room;
    }
}

/// How much a part may hold, estimated from its size and format: enough for the records of the
/// part's format at their usual length, so that columns built from it grow once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartRoom {
    /// Orders: one per 20 bytes of a CDNOW file (a line, one order, is about 28), one per 200 bytes of
    /// a generic CSV (whose orders take one line of about 120 bytes per item).
    pub orders: usize,
    /// SKUs over all orders: one per 20 bytes of a CDNOW file (one a line), one per 120 bytes of a
    /// generic CSV.
    pub skus: usize,
}

impl PartRoom {
    fn of(kind: &Kind, bytes: u64) -> Self {
        let (order_bytes, sku_bytes) = match kind {
            Kind::Cdnow => (20, 20),
            _ => (200, 120),
        };
        PartRoom { orders: (bytes / order_bytes) as usize, skus: (bytes / sku_bytes) as usize }
    }
}

/// An order's total less its refunds (each line's refunded items at their share of the line's net amount,
/// as [`OrderLine::refund_minor`] values them), never below zero.
pub fn net_minor(imported: &ImportedOrder) -> i64 {
    let order = &imported.order;
    let total = order.total_minor();
    if imported.refunds.is_empty() {
        return total;
    }
    let mut returned = vec![0u32; order.lines.len()];
    for refund in &imported.refunds {
        for line in &refund.lines {
            if let Some(q) = returned.get_mut(line.line) {
                *q = q.saturating_add(line.quantity);
            }
        }
    }
    let refunded: i64 =
        order.lines.iter().zip(&returned).map(|(l, &q)| if q > 0 { l.refund_minor(q) } else { 0 }).sum();
    (total - refunded).max(0)
}

/// Hands the facts of `imported` to `sink`.
pub fn facts_of(imported: &ImportedOrder, sink: &mut impl FactsSink) {
    let skus: Vec<&str> = imported.order.lines.iter().map(|l| l.sku.as_str()).collect();
    sink.order(&OrderFacts {
        customer: imported.customer.external_id.as_ref().map_or("", ExternalId::as_str),
        placed_at: imported.order.placed_at.naive_utc(),
        currency: imported.order.currency,
        net_minor: net_minor(imported),
        skus: &skus,
        sku_ids: None,
    });
}

/// What [`FactsReader::read`] produced.
#[derive(Debug)]
pub struct FactsRead<S> {
    /// One sink per part, in file order: the facts of every order of the file, in file order.
    pub sinks: Vec<S>,
    /// Rows, orders and rejects of the whole file, as an [`OrderReader`] counts them.
    pub summary: ReadSummary,
    /// The first rejects (at most [`FactsReader::keep_rejects`]), in file order, with their line in the file.
    pub rejected: Vec<Rejected>,
    /// How many parts the file was cut into.
    pub parts: usize,
    /// How many of them were read by an [`OrderReader`] because the fast parser was not certain.
    pub parts_read_in_full: usize,
}

/// Reads the facts of a large uncompressed generic CSV file or CDNOW log in parallel; see the [module documentation](self).
pub struct FactsReader {
    path: PathBuf,
    size: u64,
    /// The header line (empty when a CDNOW file has none).
    header: Vec<u8>,
    kind: Kind,
    options: ReadOptions,
    dates: TimestampParser,
    detected: Detected,
    part_bytes: u64,
    keep_rejects: usize,
    progress: Progress,
}

/// How much of a part is read at a time.
const CHUNK_BYTES: usize = 4 << 20;
thread_local! {
    /// The chunk buffer of the last part parsed on this thread.
    static CHUNK: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}
/// The most columns the fast parser looks at.
const MAX_COLUMNS: usize = 64;

impl FactsReader {
    /// The columns of a generic file.
    fn layout(&self) -> &Layout {
        match &self.kind {
            Kind::Generic(layout) => layout,
            Kind::Cdnow => unreachable!("only generic lines are split into columns"),
        }
    }

    /// Opens `path` for fast reading when it qualifies: uncompressed, and either in the generic format
    /// (given or detected as an [`OrderReader`] would), comma-separated, with a first line that is the
    /// header, free of quotes; or in the CDNOW format (given or detected), its first line a header or a
    /// purchase as the full reader decides. `Ok(None)` when it does not: read it with an [`OrderReader`], which also reports what
    /// is wrong with a file it cannot read.
    pub fn open(path: impl AsRef<Path>, options: &ReadOptions) -> Result<Option<Self>, IngestError> {
        let path = path.as_ref();
        if !matches!(options.format, Format::Auto | Format::Generic | Format::Cdnow) {
            return Ok(None);
        }
        let mut file = File::open(path).map_err(|source| IngestError::Open { path: path.to_owned(), source })?;
        let size = file.metadata()?.len();
        let mut head = Vec::with_capacity(SAMPLE_BYTES as usize);
        (&mut file).take(SAMPLE_BYTES).read_to_end(&mut head)?;
        if head.starts_with(&[0x1f, 0x8b]) || head.starts_with(b"\xEF\xBB\xBF") {
            return Ok(None);
        }
        let Some(header_end) = memchr::memchr(b'\n', &head) else { return Ok(None) };
        let first_line = head[..=header_end].to_vec();
        // The format, delimiter and date order exactly as a sequential read settles them.
        let Ok(sniffer) = OrderReader::from_reader(io::Cursor::new(head), options) else { return Ok(None) };
        let detected = sniffer.detected().clone();
        let (kind, header) = match (&detected.format, detected.delimiter) {
            (Format::Generic, Delimiter::Comma) => {
                let header = first_line;
                if header.contains(&b'"') || memchr::memchr(b'\r', &header).is_some_and(|at| at + 2 != header.len()) {
                    return Ok(None);
                }
                let Some(names) = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .from_reader(header.as_slice())
                    .records()
                    .next()
                    .and_then(Result::ok)
                else {
                    return Ok(None);
                };
                let Some(layout) = Layout::new(&Header::new(&names)) else { return Ok(None) };
                (Kind::Generic(layout), header)
            }
            (Format::Cdnow, Delimiter::Whitespace) => {
                // The full reader skips a first line that does not start with a digit: the header.
                let Ok(text) = std::str::from_utf8(&first_line) else { return Ok(None) };
                match text.trim().as_bytes().first() {
                    None => return Ok(None),
                    Some(b) if b.is_ascii_digit() => (Kind::Cdnow, Vec::new()),
                    Some(_) => (Kind::Cdnow, first_line),
                }
            }
            _ => return Ok(None),
        };
        let options = ReadOptions {
            format: detected.format.clone(),
            slash_date_order: Some(detected.slash_date_order),
            ..options.clone()
        };
        let dates =
            TimestampParser { slash_order: detected.slash_date_order, time_zone: options.time_zone.unwrap_or(Tz::UTC) };
        let parts = (rayon::current_num_threads() * 4) as u64;
        let part_bytes = (size / parts).clamp(1 << 20, 32 << 20);
        Ok(Some(FactsReader {
            path: path.to_owned(),
            size,
            header,
            kind,
            options,
            dates,
            detected,
            part_bytes,
            keep_rejects: 5,
            progress: Progress::new(Some(size)),
        }))
    }

    /// The format, delimiter and date order in use.
    pub fn detected(&self) -> &Detected {
        &self.detected
    }

    /// A handle to the progress counters (bytes only), to poll from another thread.
    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }

    /// Cuts the file into parts of about `bytes` bytes (at least one line each); by default about four
    /// parts per thread, between 1 and 32 MiB.
    pub fn part_bytes(mut self, bytes: u64) -> Self {
        self.part_bytes = bytes.max(1);
        self
    }

    /// Keeps the first `n` rejects (5 by default); all are counted.
    pub fn keep_rejects(mut self, n: usize) -> Self {
        self.keep_rejects = n;
        self
    }

    /// Reads the file: one sink from `make_sink` per part. `Ok(None)` when lines are not records (a quoted
    /// field holds a line break, or a line a carriage return outside quotes): read the file with an
    /// [`OrderReader`] instead.
    pub fn read<S, F>(&self, make_sink: F) -> Result<Option<FactsRead<S>>, IngestError>
    where
        S: FactsSink + Send,
        F: Fn() -> S + Sync,
    {
        let cuts = self.cuts()?;
        let ranges: Vec<(u64, u64)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
        let abandon = AtomicBool::new(false);
        let parts: Vec<Option<Part<S>>> = ranges
            .par_iter()
            .map(|&(start, end)| self.read_part(start, end, &make_sink, &abandon))
            .collect::<Result<_, IngestError>>()?;
        if abandon.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let mut read = FactsRead {
            sinks: Vec::with_capacity(parts.len()),
            summary: ReadSummary::default(),
            rejected: Vec::new(),
            parts: parts.len(),
            parts_read_in_full: 0,
        };
        let mut lines_before = u64::from(!self.header.is_empty()); // the header
        for part in parts {
            let Some(part) = part else { return Ok(None) };
            read.summary.rows += part.summary.rows;
            read.summary.orders += part.summary.orders;
            read.summary.rejected += part.summary.rejected;
            read.summary.skipped += part.summary.skipped;
            read.parts_read_in_full += usize::from(part.in_full);
            for mut rejected in part.rejected {
                if read.rejected.len() < self.keep_rejects {
                    // The part was read with a header in front: its first line is line 2.
                    rejected.line_number = rejected.line_number - 1 + lines_before;
                    read.rejected.push(rejected);
                }
            }
            lines_before += part.lines;
            read.sinks.push(part.sink);
        }
        self.progress.set_rows_read(read.summary.rows);
        Ok(Some(read))
    }

    /// Where the parts start, and the end of the file: the header's end, then order boundaries about
    /// `part_bytes` apart.
    fn cuts(&self) -> io::Result<Vec<u64>> {
        let first = self.header.len() as u64;
        let mut cuts = vec![first];
        let mut file = File::open(&self.path)?;
        let mut target = first + self.part_bytes;
        while target < self.size {
            let key = |line: &[u8]| match &self.kind {
                Kind::Generic(layout) => plain_key(line, layout.order_id).map(<[u8]>::to_vec),
                Kind::Cdnow => cdnow_key(line),
            };
            match boundary_after(&mut file, target, &key)? {
                Some(cut) => {
                    cuts.push(cut);
                    target = cut + self.part_bytes;
                }
                None => break,
            }
        }
        cuts.push(self.size);
        cuts.dedup();
        Ok(cuts)
    }

    fn read_part<S, F>(
        &self,
        start: u64,
        end: u64,
        make_sink: &F,
        abandon: &AtomicBool,
    ) -> Result<Option<Part<S>>, IngestError>
    where
        S: FactsSink,
        F: Fn() -> S,
    {
        let mut sink = make_sink();
        sink.part(PartRoom::of(&self.kind, end - start));
        let counted = AtomicU64::new(0);
        match self.parse_part(start, end, &mut sink, abandon, &counted)? {
            Parsed::Done { rows, orders, lines } => Ok(Some(Part {
                sink,
                summary: ReadSummary { rows, orders, ..ReadSummary::default() },
                rejected: Vec::new(),
                lines,
                in_full: false,
            })),
            Parsed::Uncertain => {
                drop(sink);
                self.progress.bytes_counter().fetch_sub(counted.load(Ordering::Relaxed), Ordering::Relaxed);
                self.read_part_in_full(start, end, make_sink()).map(Some)
            }
            Parsed::NotRecords => {
                abandon.store(true, Ordering::Relaxed);
                Ok(None)
            }
        }
    }

    /// Reads a part with an [`OrderReader`], the header in front.
    fn read_part_in_full<S: FactsSink>(&self, start: u64, end: u64, mut sink: S) -> Result<Part<S>, IngestError> {
        sink.part(PartRoom::of(&self.kind, end - start));
        let mut file = File::open(&self.path)?;
        file.seek(SeekFrom::Start(start))?;
        let lines = Arc::new(AtomicU64::new(0));
        let header = if self.header.is_empty() { CDNOW_HEADER.to_vec() } else { self.header.clone() };
        let input = RangeReader {
            header,
            header_pos: 0,
            file: file.take(end - start),
            lines: Arc::clone(&lines),
            bytes: self.progress.bytes_counter(),
        };
        let mut reader = OrderReader::from_reader(input, &self.options)?;
        let mut rejected = Vec::new();
        for item in &mut reader {
            match item {
                Ok(order) => facts_of(&order, &mut sink),
                Err(r) if rejected.len() < self.keep_rejects => rejected.push(r),
                Err(_) => {}
            }
        }
        let summary = reader.finish()?;
        let lines = lines.load(Ordering::Relaxed);
        Ok(Part { sink, summary, rejected, lines, in_full: true })
    }

    /// Parses `start..end` with the fast parser, in chunks of whole lines.
    fn parse_part<S: FactsSink>(
        &self,
        start: u64,
        end: u64,
        sink: &mut S,
        abandon: &AtomicBool,
        counted: &AtomicU64,
    ) -> io::Result<Parsed> {
        let mut file = File::open(&self.path)?;
        file.seek(SeekFrom::Start(start))?;
        let mut file = file.take(end - start);
        // The thread's buffer of the last part, to save zeroing a fresh one.
        let mut buf = CHUNK.with(std::cell::Cell::take);
        let size = CHUNK_BYTES.min((end - start) as usize + 1);
        if buf.len() < size {
            buf = vec![0u8; size];
        }
        let parsed = self.parse_chunks(&mut file, &mut buf, sink, abandon, counted);
        CHUNK.with(|chunk| chunk.set(buf));
        parsed
    }

    /// Parses the part in `file` in chunks read into `buf`.
    fn parse_chunks<S: FactsSink>(
        &self,
        file: &mut io::Take<File>,
        buf: &mut Vec<u8>,
        sink: &mut S,
        abandon: &AtomicBool,
        counted: &AtomicU64,
    ) -> io::Result<Parsed> {
        let bytes = self.progress.bytes_counter();
        let mut filled = 0usize;
        let mut parser = PartParser::new(self);
        loop {
            if abandon.load(Ordering::Relaxed) {
                return Ok(Parsed::NotRecords);
            }
            if filled == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
            let n = read_full(file, &mut buf[filled..])?;
            filled += n;
            bytes.fetch_add(n as u64, Ordering::Relaxed);
            counted.fetch_add(n as u64, Ordering::Relaxed);
            let at_end = n == 0 || filled < buf.len();
            let complete = if at_end {
                filled
            } else {
                match memchr::memrchr(b'\n', &buf[..filled]) {
                    Some(at) => at + 1,
                    None => continue, // a line longer than the buffer: grow it
                }
            };
            let Ok(text) = std::str::from_utf8(&buf[..complete]) else {
                // The full reader rejects the row; the lines must still be records.
                return Ok(parser.settle(Some(&buf[..complete]), file, &buf[complete..filled]));
            };
            if let Err(stop) = parser.lines(text, sink) {
                return Ok(match stop {
                    Stop::NotRecords => Parsed::NotRecords,
                    Stop::Uncertain => parser.settle(None, file, &buf[parser.stopped_at.min(complete)..filled]),
                });
            }
            buf.copy_within(complete..filled, 0);
            filled -= complete;
            if at_end {
                break;
            }
        }
        parser.finish(sink)
    }
}

/// Reads until `buf` is full or the input ends.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// One part's result.
struct Part<S> {
    sink: S,
    summary: ReadSummary,
    rejected: Vec<Rejected>,
    /// Line breaks in the part.
    lines: u64,
    in_full: bool,
}

enum Parsed {
    Done {
        rows: u64,
        orders: u64,
        lines: u64,
    },
    /// Something the fast parser does not decide: read the part with an [`OrderReader`].
    Uncertain,
    /// Lines are not records: read the file with an [`OrderReader`].
    NotRecords,
}

enum Stop {
    Uncertain,
    NotRecords,
}

/// The part `file[start..end]` behind the header line, counting its line breaks and bytes.
struct RangeReader {
    header: Vec<u8>,
    header_pos: usize,
    file: io::Take<File>,
    lines: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.header_pos < self.header.len() {
            let n = (self.header.len() - self.header_pos).min(buf.len());
            buf[..n].copy_from_slice(&self.header[self.header_pos..self.header_pos + n]);
            self.header_pos += n;
            return Ok(n);
        }
        let n = self.file.read(buf)?;
        self.lines.fetch_add(memchr::memchr_iter(b'\n', &buf[..n]).count() as u64, Ordering::Relaxed);
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The first order boundary after `from`: the start of a line whose order id differs from that of the
/// non-empty line before it, both plain enough to be sure of their ids. The line `from` falls in is
/// skipped (it may be partial). `None` when the file ends first.
fn boundary_after(file: &mut File, from: u64, key: &dyn Fn(&[u8]) -> Option<Vec<u8>>) -> io::Result<Option<u64>> {
    file.seek(SeekFrom::Start(from))?;
    let mut buf = vec![0u8; 64 << 10];
    let mut filled = 0usize;
    let mut base = from; // file offset of buf[0]
    let mut skipped_partial = false;
    let mut previous: Option<Vec<u8>> = None;
    loop {
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = read_full(file, &mut buf[filled..])?;
        if n == 0 {
            return Ok(None);
        }
        filled += n;
        let mut line_start = 0usize;
        while let Some(nl) = memchr::memchr(b'\n', &buf[line_start..filled]) {
            let line = &buf[line_start..line_start + nl];
            let at = base + line_start as u64;
            line_start += nl + 1;
            if !skipped_partial {
                skipped_partial = true;
                continue;
            }
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let key = key(line);
            if let (Some(before), Some(key)) = (&previous, &key)
                && before != key
            {
                return Ok(Some(at));
            }
            previous = key;
        }
        buf.copy_within(line_start..filled, 0);
        filled -= line_start;
        base += line_start as u64;
    }
}

/// What the fast parser reads.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one per reader
enum Kind {
    /// Generic CSV with these columns.
    Generic(Layout),
    /// CDNOW's whitespace-separated purchase log (as `formats::cdnow` reads it).
    Cdnow,
}

/// Put in front of a part of a CDNOW file without a header, for an [`OrderReader`] to skip.
const CDNOW_HEADER: &[u8] = b"customer_id date number_of_cds dollar_value\n";

/// The words of a CDNOW line as the full reader splits them (the line trimmed, split at runs of ASCII
/// whitespace), when the line holds nothing but visible ASCII, spaces, tabs, form feeds and carriage
/// returns and at most five words; `Err` otherwise (what trimming and splitting do with other bytes is
/// left to the full reader). The count of words and where they start and end.
fn cdnow_words(line: &[u8]) -> Result<(usize, [(usize, usize); 5]), Stop> {
    let mut words = [(0, 0); 5];
    let mut n = 0;
    let mut i = 0;
    while i < line.len() {
        if matches!(line[i], b' ' | b'\t' | b'\r' | b'\x0c') {
            i += 1;
            continue;
        }
        let start = i;
        while i < line.len() && (b'!'..=b'~').contains(&line[i]) {
            i += 1;
        }
        if i == start || n == words.len() {
            return Err(Stop::Uncertain);
        }
        words[n] = (start, i);
        n += 1;
    }
    Ok((n, words))
}

/// The order key of a CDNOW line (customer and date), when the fast parser would take the line.
fn cdnow_key(line: &[u8]) -> Option<Vec<u8>> {
    match cdnow_words(line) {
        Ok((n @ (4 | 5), words)) => {
            let word = |k: usize| &line[words[k].0..words[k].1];
            Some([word(0), b"-", word(n - 3)].concat())
        }
        _ => None,
    }
}

/// The trimmed order id of a line, when no quote or carriage return comes before its end and it is UTF-8.
fn plain_key(line: &[u8], column: usize) -> Option<&[u8]> {
    let mut start = 0;
    for _ in 0..column {
        start += memchr::memchr(b',', &line[start..])? + 1;
    }
    let end = memchr::memchr(b',', &line[start..]).map_or(line.len(), |at| start + at);
    let head = &line[..end];
    if memchr::memchr2(b'"', b'\r', head).is_some() {
        return None;
    }
    let key = std::str::from_utf8(&line[start..end]).ok()?.trim();
    (!key.is_empty()).then_some(key.as_bytes())
}

/// Where the generic columns are.
#[derive(Debug, Clone)]
struct Layout {
    order_id: usize,
    customer_id: Option<usize>,
    email: Option<usize>,
    /// email, name, phone, birthday, locale, time_zone, marketing_consent, marketing_consent_at.
    details: [Option<usize>; 8],
    placed_at: usize,
    currency: usize,
    sku: usize,
    quantity: usize,
    unit_price: usize,
    discount: Option<usize>,
    refunded_quantity: Option<usize>,
    refunded_at: Option<usize>,
    /// The first and last of the `details` columns.
    detail_span: Option<(usize, usize)>,
    /// One more than the highest column used.
    needed: usize,
}

impl Layout {
    /// The columns as the generic reader finds them; `None` when a required one is missing or a column
    /// used lies beyond [`MAX_COLUMNS`].
    fn new(header: &Header) -> Option<Self> {
        let find = |name: &str| header.find(&[name]).map(|c| c.index);
        let email = find("email");
        let customer_id = find("customer_id");
        if email.is_none() && customer_id.is_none() {
            return None;
        }
        let layout = Layout {
            order_id: find("order_id")?,
            customer_id,
            email,
            details: [
                email,
                find("name"),
                find("phone"),
                find("birthday"),
                find("locale"),
                find("time_zone"),
                find("marketing_consent"),
                find("marketing_consent_at"),
            ],
            placed_at: find("placed_at")?,
            currency: find("currency")?,
            sku: find("sku")?,
            quantity: find("quantity")?,
            unit_price: find("unit_price")?,
            discount: find("discount"),
            refunded_quantity: find("refunded_quantity"),
            refunded_at: find("refunded_at"),
            detail_span: None,
            needed: 0,
        };
        let present = || layout.details.iter().flatten().copied();
        let detail_span = present().min().zip(present().max());
        let used = [
            Some(layout.order_id),
            layout.customer_id,
            Some(layout.placed_at),
            Some(layout.currency),
            Some(layout.sku),
            Some(layout.quantity),
            Some(layout.unit_price),
            layout.discount,
            layout.refunded_quantity,
            layout.refunded_at,
        ];
        let needed = used.iter().chain(&layout.details).flatten().max().map_or(0, |&m| m + 1);
        (needed <= MAX_COLUMNS).then_some(Layout { needed, detail_span, ..layout })
    }
}

/// The fields of one line: byte ranges into the line (inside the quotes of a quoted field).
struct Fields {
    /// Where each field starts and ends (a word's worth of room past [`MAX_COLUMNS`], written by
    /// [`Fields::split_plain`] and never read).
    start: [u32; MAX_COLUMNS + 9],
    end: [u32; MAX_COLUMNS + 9],
    /// Bit `i`: field `i` is quoted.
    quoted: u64,
    /// Bit `i`: field `i` holds `""` (to be unescaped).
    escaped: u64,
    count: usize,
}

/// `s` trimmed as `str::trim` trims it; at once when it starts and ends with visible ASCII.
fn trim(s: &str) -> &str {
    match s.as_bytes() {
        [] => s,
        [first, .., last] | [first @ last] if (b'!'..0x80).contains(first) && (b'!'..0x80).contains(last) => s,
        _ => s.trim(),
    }
}

impl Fields {
    fn new() -> Self {
        Fields { start: [0; MAX_COLUMNS + 9], end: [0; MAX_COLUMNS + 9], quoted: 0, escaped: 0, count: 0 }
    }

    /// The value of column `col` as the `csv` crate gives it, trimmed as the readers trim it; empty when
    /// the row is short or the column absent.
    #[inline]
    fn value<'t>(&self, line: &'t str, col: Option<usize>) -> Cow<'t, str> {
        match col {
            Some(i) if i < self.count => {
                let raw = &line[self.start[i] as usize..self.end[i] as usize];
                if self.escaped & (1 << i) != 0 {
                    Cow::Owned(raw.replace("\"\"", "\"").trim().to_owned())
                } else {
                    Cow::Borrowed(trim(raw))
                }
            }
            _ => Cow::Borrowed(""),
        }
    }

    #[inline]
    fn get<'t>(&self, line: &'t str, col: usize) -> Cow<'t, str> {
        self.value(line, Some(col))
    }

    /// The bytes of fields `first..=last` as the line has them, quotes included; `None` when the row is
    /// short of `last`. Equal bytes are equal values, however they are quoted.
    fn raw<'t>(&self, line: &'t [u8], first: usize, last: usize) -> Option<&'t [u8]> {
        if last >= self.count {
            return None;
        }
        let quote = |i: usize| (self.quoted >> i) as u32 & 1;
        Some(&line[(self.start[first] - quote(first)) as usize..(self.end[last] + quote(last)) as usize])
    }

    /// Splits a line without quotes or carriage returns: the first `needed` fields (at most
    /// [`MAX_COLUMNS`]).
    fn split_plain(&mut self, line: &[u8], needed: usize) {
        self.escaped = 0;
        self.quoted = 0;
        // The first `needed` commas (or all of them), eight bytes at a time: the high bit of each byte
        // that is a comma. Comma `n` ends field `n` and starts field `n + 1`.
        const COMMAS: u64 = u64::from_ne_bytes([b','; 8]);
        const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
        let (starts, ends) = (&mut self.start, &mut self.end);
        starts[0] = 0;
        let mut n = 0usize;
        let mut i = 0;
        while n < needed && i + 8 <= line.len() {
            let x = u64::from_le_bytes(line[i..i + 8].try_into().expect("eight bytes")) ^ COMMAS;
            let mut found = !(((x & LOW7) + LOW7) | x) & !LOW7;
            while found != 0 {
                let at = i as u32 + found.trailing_zeros() / 8;
                ends[n] = at;
                starts[n + 1] = at + 1;
                n += 1;
                found &= found - 1;
            }
            i += 8;
        }
        while n < needed && i < line.len() {
            if line[i] == b',' {
                ends[n] = i as u32;
                starts[n + 1] = i as u32 + 1;
                n += 1;
            }
            i += 1;
        }
        if n < needed {
            // The last field ends with the line.
            ends[n] = line.len() as u32;
        }
        self.count = (n + 1).min(needed);
    }

    /// Splits any line by the rules of the `csv` crate, checking all of it. `Err(NotRecords)` when it
    /// ends inside quotes or has a carriage return outside them (the line is not a record);
    /// `Err(Uncertain)` for quotes the fast parser does not take (inside a plain field, or text after a
    /// closing quote), after checking the rest of the line.
    fn split_quoted(&mut self, line: &[u8], needed: usize) -> Result<(), Stop> {
        self.escaped = 0;
        self.quoted = 0;
        self.count = 0;
        let mut uncertain = false;
        let mut i = 0;
        let mut col = 0;
        loop {
            let (start, end);
            if line.get(i) == Some(&b'"') {
                if col < MAX_COLUMNS {
                    self.quoted |= 1 << col;
                }
                i += 1;
                start = i;
                loop {
                    let Some(q) = memchr::memchr(b'"', &line[i..]) else { return Err(Stop::NotRecords) };
                    i += q + 1;
                    if line.get(i) == Some(&b'"') {
                        if col < MAX_COLUMNS {
                            self.escaped |= 1 << col;
                        }
                        i += 1;
                    } else {
                        break;
                    }
                }
                end = i - 1;
                if i < line.len() && line[i] != b',' {
                    // Text after the closing quote: the csv crate reads on as a plain field.
                    uncertain = true;
                    let rest = memchr::memchr(b',', &line[i..]).map_or(line.len(), |at| i + at);
                    if line[i..rest].contains(&b'\r') {
                        return Err(Stop::NotRecords);
                    }
                    i = rest;
                }
            } else {
                start = i;
                end = memchr::memchr(b',', &line[i..]).map_or(line.len(), |at| i + at);
                match memchr::memchr2(b'"', b'\r', &line[i..end]) {
                    Some(at) if line[i + at] == b'\r' => return Err(Stop::NotRecords),
                    Some(_) => uncertain = true, // a quote inside a plain field is kept as it is
                    None => {}
                }
                i = end;
            }
            if col < needed {
                self.start[col] = start as u32;
                self.end[col] = end as u32;
                self.count = col + 1;
            }
            col += 1;
            if i >= line.len() {
                break;
            }
            i += 1; // the comma
            if i == line.len() {
                // A last, empty field.
                if col < needed {
                    self.start[col] = i as u32;
                    self.end[col] = i as u32;
                    self.count = col + 1;
                }
                break;
            }
        }
        if uncertain { Err(Stop::Uncertain) } else { Ok(()) }
    }
}

/// A customer's contact details as last checked: the fields as the line had them, and the birthday.
struct CheckedDetails {
    values: Vec<u8>,
    birthday: Option<NaiveDate>,
}

/// The order being read.
#[derive(Default)]
struct Current {
    active: bool,
    id: String,
    customer: String,
    placed_at: NaiveDateTime,
    currency: Option<Currency>,
    lines: usize,
    /// A CDNOW order's number of CDs.
    quantity: i64,
    total: i64,
    refunded: i64,
    /// The distinct refund times of the order (each is a refund, with an id of its own).
    refund_times: Vec<DateTime<Utc>>,
    /// The SKUs of the order's lines, as numbers of the part's [`SkuTable`].
    skus: Vec<u32>,
}

/// The SKUs of a part, numbered from 0 in order of first appearance, found by their text.
#[derive(Default)]
struct SkuTable {
    /// The last number found for a SKU of up to 16 bytes, plus one, by the low bits of its hash (0: none).
    recent: Vec<u32>,
    names: Vec<String>,
    /// The numbers, by hash of the text.
    table: hashbrown::HashTable<u32>,
    /// Each SKU of at most 16 bytes as one number (its bytes, zero-padded), to compare without `memcmp`.
    packed: Vec<u128>,
}

impl SkuTable {
    /// The text of up to 16 bytes as one number; `None` for longer text.
    #[inline]
    fn pack(text: &[u8]) -> Option<u128> {
        // Read in words, overlapping where the text is shorter (no copy through memory, which the
        // processor would have to forward from bytes to words).
        let len = text.len();
        let word8 = |at: usize| u64::from_le_bytes(text[at..at + 8].try_into().expect("eight bytes"));
        let word4 = |at: usize| u64::from(u32::from_le_bytes(text[at..at + 4].try_into().expect("four bytes")));
        let (low, high) = match len {
            17.. => return None,
            9..=16 => (word8(0), word8(len - 8) >> ((16 - len) * 8)),
            8 => (word8(0), 0),
            4..=7 => (word4(0) | word4(len - 4) << ((len - 4) * 8), 0),
            _ => (text.iter().rev().fold(0u64, |w, &b| w << 8 | u64::from(b)), 0),
        };
        Some(u128::from(low) | u128::from(high) << 64)
    }

    #[inline]
    fn hash(text: &[u8], packed: Option<u128>) -> u64 {
        const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mix = |h: u64, n: u64| (h.rotate_left(5) ^ n).wrapping_mul(SEED);
        match packed {
            Some(p) => mix(mix(mix(0, p as u64), (p >> 64) as u64), text.len() as u64),
            None => text.chunks(8).fold(mix(0, text.len() as u64), |h, chunk| {
                let mut word = [0u8; 8];
                word[..chunk.len()].copy_from_slice(chunk);
                mix(h, u64::from_le_bytes(word))
            }),
        }
    }

    const RECENT: usize = 1024;

    /// The number of `text`, when it is in the table.
    #[inline]
    fn find(&mut self, text: &[u8]) -> Option<u32> {
        let packed = Self::pack(text);
        let hash = Self::hash(text, packed);
        let (names, packs) = (&self.names, &self.packed);
        // Zero padding: equal numbers of equal length are equal text.
        let same = |id: u32, p: u128| packs[id as usize] == p && names[id as usize].len() == text.len();
        match packed {
            Some(p) => {
                if self.recent.is_empty() {
                    self.recent = vec![0; Self::RECENT];
                }
                let slot = (hash >> 32) as usize % Self::RECENT;
                let recent = self.recent[slot];
                if recent != 0 && same(recent - 1, p) {
                    return Some(recent - 1);
                }
                let id = *self.table.find(hash, |&id| same(id, p))?;
                self.recent[slot] = id + 1;
                Some(id)
            }
            None => self.table.find(hash, |&id| names[id as usize].as_bytes() == text).copied(),
        }
    }

    /// The number of `text`, added when new.
    fn intern(&mut self, text: &str) -> u32 {
        if let Some(id) = self.find(text.as_bytes()) {
            return id;
        }
        let id = self.names.len() as u32;
        let packed = Self::pack(text.as_bytes());
        let hash = Self::hash(text.as_bytes(), packed);
        self.names.push(text.to_owned());
        self.packed.push(packed.unwrap_or(0));
        let (names, packs) = (&self.names, &self.packed);
        self.table.insert_unique(hash, id, |&id| {
            let name = names[id as usize].as_bytes();
            Self::hash(name, (name.len() <= 16).then(|| packs[id as usize]))
        });
        id
    }
}

/// The fast parser of one part.
struct PartParser<'r> {
    reader: &'r FactsReader,
    fields: Fields,
    current: Current,
    currencies: CurrencyCache,
    /// A CDNOW order's currency.
    usd: Currency,
    /// CDNOW dates read: (the date's bytes as a number, the time), by a hash of the number.
    dates: Vec<(u64, NaiveDateTime)>,
    /// The SKUs of the part: the numbers handed to the sink.
    skus: SkuTable,
    /// Contact details checked, per customer: an index into `checked`.
    details: HashMap<String, usize>,
    checked: Vec<CheckedDetails>,
    last_customer: String,
    last_checked: Option<usize>,
    /// Locales and time zones the full reader accepts.
    valid: HashSet<String>,
    rows: u64,
    orders: u64,
    lines: u64,
    /// Where in the chunk the line that stopped the parser ends (to check the rest of the part from).
    stopped_at: usize,
}

impl<'r> PartParser<'r> {
    fn new(reader: &'r FactsReader) -> Self {
        PartParser {
            reader,
            fields: Fields::new(),
            current: Current::default(),
            currencies: CurrencyCache::default(),
            usd: Currency::parse("currency", "USD").expect("USD is a currency"),
            dates: Vec::new(),
            skus: SkuTable::default(),
            details: HashMap::new(),
            checked: Vec::new(),
            last_customer: String::new(),
            last_checked: None,
            valid: HashSet::new(),
            rows: 0,
            orders: 0,
            lines: 0,
            stopped_at: 0,
        }
    }

    /// Parses the whole lines of `text` (a chunk ending at a line break, or at the end of the part).
    fn lines<S: FactsSink>(&mut self, text: &str, sink: &mut S) -> Result<(), Stop> {
        if let Kind::Cdnow = self.reader.kind {
            return self.cdnow_lines(text, sink);
        }
        let bytes = text.as_bytes();
        let special = |from: usize| memchr::memchr2(b'"', b'\r', &bytes[from..]).map_or(bytes.len(), |at| from + at);
        // The next quote or carriage return: lines before it are plain.
        let mut next_special = special(0);
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', bytes) {
            self.stopped_at = nl + 1;
            self.line(&text[start..nl], next_special < nl, sink)?;
            self.lines += 1;
            start = nl + 1;
            if next_special < start {
                next_special = special(start);
            }
        }
        if start < bytes.len() {
            self.stopped_at = bytes.len();
            self.line(&text[start..], next_special < bytes.len(), sink)?;
        }
        Ok(())
    }

    /// Reads one line; `special` when it may hold a quote or a carriage return.
    fn line<S: FactsSink>(&mut self, line: &str, special: bool, sink: &mut S) -> Result<(), Stop> {
        let line = if special { line.strip_suffix('\r').unwrap_or(line) } else { line };
        if line.is_empty() {
            return Ok(()); // the csv crate skips empty lines
        }
        let bytes = line.as_bytes();
        let reader = self.reader;
        let layout = reader.layout();
        let needed = layout.needed;
        if !special || memchr::memchr2(b'"', b'\r', bytes).is_none() {
            self.fields.split_plain(bytes, needed);
        } else {
            self.fields.split_quoted(bytes, needed)?;
        }
        self.rows += 1;
        let id = self.fields.get(line, layout.order_id);
        if id.is_empty() {
            return Err(Stop::Uncertain);
        }
        if !(self.current.active && same(self.current.id.as_bytes(), id.as_bytes())) {
            if self.current.active {
                self.finish_order(sink)?;
            }
            self.start_order(line, &id)?;
        }
        self.add_line(line)
    }

    fn start_order(&mut self, line: &str, id: &str) -> Result<(), Stop> {
        let reader = self.reader;
        let layout = reader.layout();
        let f = &self.fields;
        check_bounded_text("order_id", id, ExternalId::MAX_CHARS).map_err(uncertain)?;
        let placed_at = f.get(line, layout.placed_at);
        if placed_at.is_empty() {
            return Err(Stop::Uncertain);
        }
        let placed_at = reader.dates.parse(&placed_at).map_err(uncertain)?.naive_utc();
        let currency = self.currencies.parse("currency", &f.get(line, layout.currency)).map_err(uncertain)?;
        let customer_id = f.value(line, layout.customer_id);
        let customer: Cow<'_, str> = if !customer_id.is_empty() {
            // The customer of the order before passed the same check (as a customer id or an e-mail).
            if !same(self.current.customer.as_bytes(), customer_id.as_bytes()) {
                check_bounded_text("customer_id", &customer_id, ExternalId::MAX_CHARS).map_err(uncertain)?;
            }
            customer_id
        } else {
            let email = f.value(line, layout.email);
            if email.is_empty() {
                return Err(Stop::Uncertain);
            }
            let email = Email::parse("email", &email).map_err(uncertain)?;
            check_bounded_text("email", email.as_str(), ExternalId::MAX_CHARS).map_err(uncertain)?;
            Cow::Owned(email.as_str().to_owned())
        };
        self.check_details(line, &customer, placed_at.date())?;
        let c = &mut self.current;
        c.active = true;
        c.id.clear();
        c.id.push_str(id);
        c.customer.clear();
        c.customer.push_str(&customer);
        c.placed_at = placed_at;
        c.currency = Some(currency);
        c.lines = 0;
        c.total = 0;
        c.refunded = 0;
        c.refund_times.clear();
        c.skus.clear();
        Ok(())
    }

    /// The customer's contact details must be what the full reader accepts: checked with its functions
    /// when they differ from the last ones checked for this customer; the birthday against every order.
    fn check_details(&mut self, line: &str, customer: &str, placed_on: NaiveDate) -> Result<(), Stop> {
        let reader = self.reader;
        let layout = reader.layout();
        let Some((first, last)) = layout.detail_span else { return Ok(()) };
        let Some(raw) = self.fields.raw(line.as_bytes(), first, last) else {
            // A short row: no memo.
            let birthday = self.check_details_in_full(line, placed_on)?;
            return if birthday.is_some_and(|day| day > placed_on) { Err(Stop::Uncertain) } else { Ok(()) };
        };
        // Files list a customer's orders together, or at least often: the last customer first.
        let known = match self.last_checked {
            Some(index) if same(self.last_customer.as_bytes(), customer.as_bytes()) => Some(index),
            _ => self.details.get(customer).copied(),
        };
        let birthday = match known {
            Some(index) if self.checked[index].values == raw => {
                self.last_checked = Some(index);
                self.checked[index].birthday
            }
            _ => {
                let birthday = self.check_details_in_full(line, placed_on)?;
                let checked = CheckedDetails { values: raw.to_vec(), birthday };
                let index = match known {
                    Some(index) => {
                        self.checked[index] = checked;
                        index
                    }
                    None => {
                        self.checked.push(checked);
                        self.details.insert(customer.to_owned(), self.checked.len() - 1);
                        self.checked.len() - 1
                    }
                };
                self.last_checked = Some(index);
                birthday
            }
        };
        if !same(self.last_customer.as_bytes(), customer.as_bytes()) {
            self.last_customer.clear();
            self.last_customer.push_str(customer);
        }
        match birthday {
            Some(day) if day > placed_on => Err(Stop::Uncertain),
            _ => Ok(()),
        }
    }

    /// The checks of the generic reader on the first row of an order; the birthday.
    fn check_details_in_full(&mut self, line: &str, placed_on: NaiveDate) -> Result<Option<NaiveDate>, Stop> {
        let [email, name, phone, birthday, locale, time_zone, consent, consent_at] =
            self.reader.layout().details.map(|col| self.fields.value(line, col));
        if !email.is_empty() {
            Email::parse("email", &email).map_err(uncertain)?;
        }
        if !name.is_empty() {
            // What parse_name checks, without the copy.
            check_bounded_text("name", &name, 200).map_err(uncertain)?;
        }
        if !phone.is_empty() {
            Phone::parse("phone", &phone).map_err(uncertain)?;
        }
        let birthday = if birthday.is_empty() {
            None
        } else {
            Some(parse_birthday("birthday", &birthday, placed_on).map_err(uncertain)?)
        };
        // Few distinct values: each checked once.
        for (value, check) in [(&locale, check_locale as fn(&str) -> bool), (&time_zone, check_time_zone)] {
            if !value.is_empty() && !self.valid.contains(value.as_ref()) {
                if !check(value) {
                    return Err(Stop::Uncertain);
                }
                self.valid.insert(value.to_string());
            }
        }
        if !matches!(consent.as_ref(), "" | "true" | "false") {
            parse_bool("marketing_consent", &consent).map_err(uncertain)?;
        }
        if !consent_at.is_empty() {
            self.reader.dates.parse(&consent_at).map_err(uncertain)?;
        }
        Ok(birthday)
    }

    fn add_line(&mut self, line: &str) -> Result<(), Stop> {
        let reader = self.reader;
        let layout = reader.layout();
        let f = &self.fields;
        let currency = self.current.currency.expect("set by start_order");
        let raw_sku = f.get(line, layout.sku);
        // A SKU seen before passed the check before.
        let sku = match self.skus.find(raw_sku.as_bytes()) {
            Some(id) => id,
            None => {
                let sku = check_bounded_text("sku", &raw_sku, 64).map_err(uncertain)?;
                self.skus.intern(sku)
            }
        };
        let quantity = whole(&f.get(line, layout.quantity))?;
        let quantity = Quantity::new("quantity", quantity).map_err(uncertain)?;
        let unit_price = amount(&f.get(line, layout.unit_price), currency)?;
        let discount = f.value(line, layout.discount);
        let discount = if discount.is_empty() { 0 } else { amount(&discount, currency)? };
        let net = OrderLine::check_amounts(quantity, unit_price, discount).map_err(uncertain)?;
        let refunded = f.value(line, layout.refunded_quantity);
        if !refunded.is_empty() {
            let refunded = whole(&refunded)?;
            if refunded < 0 || refunded > i64::from(quantity.get()) {
                return Err(Stop::Uncertain);
            }
            if refunded > 0 {
                let at = f.value(line, layout.refunded_at);
                if at.is_empty() {
                    return Err(Stop::Uncertain);
                }
                let at = reader.dates.parse(&at).map_err(uncertain)?;
                let c = &mut self.current;
                if !c.refund_times.contains(&at) {
                    c.refund_times.push(at);
                }
                c.refunded += refund_share(net, quantity.get(), refunded as u32);
            }
        }
        let c = &mut self.current;
        c.lines += 1;
        c.total += net;
        c.skus.push(sku);
        Ok(())
    }

    /// The checks of the generic reader on a whole order; hands its facts to the sink.
    fn finish_order<S: FactsSink>(&mut self, sink: &mut S) -> Result<(), Stop> {
        if let Kind::Cdnow = self.reader.kind {
            return self.finish_cdnow_order(sink);
        }
        let c = &mut self.current;
        c.active = false;
        if c.lines > OrderDraft::MAX_LINES || c.total > MAX_AMOUNT_MINOR {
            return Err(Stop::Uncertain);
        }
        // Refund ids `<order_id>-refund`, `<order_id>-refund-2`, ... must be external ids too.
        let refunds = c.refund_times.len();
        if refunds > 0 {
            let suffix = if refunds == 1 { "-refund".len() } else { "-refund-".len() + refunds.to_string().len() };
            if c.id.chars().count() + suffix > ExternalId::MAX_CHARS {
                return Err(Stop::Uncertain);
            }
        }
        let names = &self.skus.names;
        let mut few = [""; 8];
        let many: Vec<&str>;
        let skus: &[&str] = if c.skus.len() <= few.len() {
            for (slot, &id) in few.iter_mut().zip(&c.skus) {
                *slot = &names[id as usize];
            }
            &few[..c.skus.len()]
        } else {
            many = c.skus.iter().map(|&id| names[id as usize].as_str()).collect();
            &many
        };
        sink.order(&OrderFacts {
            customer: &c.customer,
            placed_at: c.placed_at,
            currency: c.currency.expect("set by start_order"),
            net_minor: (c.total - c.refunded).max(0),
            skus,
            sku_ids: Some(&c.skus),
        });
        self.orders += 1;
        Ok(())
    }

    fn finish<S: FactsSink>(&mut self, sink: &mut S) -> io::Result<Parsed> {
        if self.current.active && self.finish_order(sink).is_err() {
            return Ok(Parsed::Uncertain);
        }
        Ok(Parsed::Done { rows: self.rows, orders: self.orders, lines: self.lines })
    }

    /// Parses the whole lines of a chunk of a CDNOW file.
    fn cdnow_lines<S: FactsSink>(&mut self, text: &str, sink: &mut S) -> Result<(), Stop> {
        let bytes = text.as_bytes();
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', bytes) {
            self.stopped_at = nl + 1;
            self.cdnow_line(&text[start..nl], sink)?;
            self.lines += 1;
            start = nl + 1;
        }
        if start < bytes.len() {
            self.stopped_at = bytes.len();
            self.cdnow_line(&text[start..], sink)?;
        }
        Ok(())
    }

    /// Reads one line of a CDNOW file, `customer_id date number_of_cds dollar_value`, with the sample id
    /// second in the 1/10 sample: the lines of one customer and day in a row are one order, as
    /// `formats::cdnow` reads them, with the same checks.
    fn cdnow_line<S: FactsSink>(&mut self, line: &str, sink: &mut S) -> Result<(), Stop> {
        let (n, words) = cdnow_words(line.as_bytes())?;
        if n == 0 {
            return Ok(()); // blank lines are skipped
        }
        if n < 4 {
            return Err(Stop::Uncertain);
        }
        self.rows += 1;
        // Visible ASCII: the words are text as they are.
        let word = |k: usize| &line[words[k].0..words[k].1];
        let (customer, date, cds, value) = (word(0), word(n - 3), word(n - 2), word(n - 1));
        // The full reader's key is `customer-date`: without a `-` in the date, equal keys are equal pairs.
        if date.contains('-') {
            return Err(Stop::Uncertain);
        }
        let c = &self.current;
        if !(c.active && same(c.customer.as_bytes(), customer.as_bytes()) && same(c.id.as_bytes(), date.as_bytes())) {
            if c.active {
                self.finish_cdnow_order(sink)?;
            }
            let placed_at = self.cdnow_date(date)?;
            if !same(self.current.customer.as_bytes(), customer.as_bytes()) {
                check_bounded_text("customer_id", customer, ExternalId::MAX_CHARS).map_err(uncertain)?;
            }
            // The order id `cdnow-<customer>-<date>`, all visible ASCII.
            if "cdnow-".len() + customer.len() + 1 + date.len() > ExternalId::MAX_CHARS {
                return Err(Stop::Uncertain);
            }
            let c = &mut self.current;
            c.active = true;
            c.id.clear();
            c.id.push_str(date);
            c.customer.clear();
            c.customer.push_str(customer);
            c.placed_at = placed_at;
            c.quantity = 0;
            c.total = 0;
        }
        let usd = self.usd;
        let cds = whole(cds)?;
        Quantity::new("number_of_cds", cds).map_err(uncertain)?;
        let value = amount(value, usd)?;
        let c = &mut self.current;
        c.quantity += cds;
        c.total = c.total.checked_add(value).ok_or(Stop::Uncertain)?;
        Ok(())
    }

    /// A CDNOW date as the full reader reads it, from a small cache of the dates read before (a log
    /// holds a few thousand distinct days).
    #[inline]
    fn cdnow_date(&mut self, date: &str) -> Result<NaiveDateTime, Stop> {
        let key = match date.len() {
            1..=8 => SkuTable::pack(date.as_bytes()).map_or(0, |p| p as u64),
            _ => 0, // (0 is no date: visible ASCII is never zero)
        };
        let slot = (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 54) as usize;
        if key != 0
            && let Some(&(seen, at)) = self.dates.get(slot)
            && seen == key
        {
            return Ok(at);
        }
        let at = self.reader.dates.parse(date).map_err(uncertain)?.naive_utc();
        if key != 0 {
            if self.dates.is_empty() {
                self.dates = vec![(0, NaiveDateTime::MIN); 1 << 10];
            }
            self.dates[slot] = (key, at);
        }
        Ok(at)
    }

    /// The checks of the CDNOW reader on a whole order (one line worth the day's value); hands its facts
    /// to the sink.
    fn finish_cdnow_order<S: FactsSink>(&mut self, sink: &mut S) -> Result<(), Stop> {
        let c = &mut self.current;
        c.active = false;
        let quantity = Quantity::new("number_of_cds", c.quantity).map_err(uncertain)?;
        if c.total > MAX_AMOUNT_MINOR {
            return Err(Stop::Uncertain);
        }
        // The line of `line_with_total`: the unit price rounded up, the rest a discount.
        let q = i64::from(quantity.get());
        let unit = (c.total + q - 1) / q;
        OrderLine::check_amounts(quantity, unit, unit * q - c.total).map_err(uncertain)?;
        sink.order(&OrderFacts {
            customer: &c.customer,
            placed_at: c.placed_at,
            currency: self.usd,
            net_minor: c.total,
            skus: &["CD"],
            sku_ids: Some(&[0]),
        });
        self.orders += 1;
        Ok(())
    }

    /// After the parser stopped on something it does not decide: checks that the rest of the part is
    /// records (lines), so that an [`OrderReader`] may read the part. `invalid` is a chunk that is not
    /// UTF-8, `rest` the bytes already read after the point where parsing stopped.
    fn settle(&self, invalid: Option<&[u8]>, file: &mut io::Take<File>, rest: &[u8]) -> Parsed {
        if let Kind::Cdnow = self.reader.kind {
            return Parsed::Uncertain; // whitespace-separated lines are always records
        }
        let mut fields = Fields::new();
        let mut carry: Vec<u8> = Vec::new();
        let mut check = |data: &[u8], last: bool, carry: &mut Vec<u8>| -> Result<(), Stop> {
            carry.extend_from_slice(data);
            let mut start = 0;
            while let Some(nl) = memchr::memchr(b'\n', &carry[start..]) {
                check_records(&mut fields, &carry[start..start + nl])?;
                start += nl + 1;
            }
            if last {
                check_records(&mut fields, &carry[start..])?;
                start = carry.len();
            }
            carry.drain(..start);
            Ok(())
        };
        let mut run = || -> Result<(), Stop> {
            if let Some(chunk) = invalid {
                check(chunk, false, &mut carry)?;
            }
            check(rest, false, &mut carry)?;
            let mut buf = vec![0u8; CHUNK_BYTES];
            loop {
                let n = read_full(file, &mut buf).map_err(|_| Stop::NotRecords)?;
                check(&buf[..n], n == 0, &mut carry)?;
                if n == 0 {
                    return Ok(());
                }
            }
        };
        match run() {
            Err(Stop::NotRecords) => Parsed::NotRecords,
            _ => Parsed::Uncertain,
        }
    }
}

/// Whether a line is one record: `Err(NotRecords)` when not.
fn check_records(fields: &mut Fields, line: &[u8]) -> Result<(), Stop> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if memchr::memchr2(b'"', b'\r', line).is_none() {
        return Ok(());
    }
    match fields.split_quoted(line, 0) {
        Err(Stop::NotRecords) => Err(Stop::NotRecords),
        _ => Ok(()),
    }
}

/// Whether two byte strings are equal; short ones compared in words, without a call to `memcmp`.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && if a.len() <= 16 { SkuTable::pack(a) == SkuTable::pack(b) } else { a == b }
}

fn check_locale(raw: &str) -> bool {
    parse_locale("locale", raw).is_ok()
}

fn check_time_zone(raw: &str) -> bool {
    parse_time_zone("time_zone", raw).is_ok()
}

fn uncertain<E>(_: E) -> Stop {
    Stop::Uncertain
}

/// A whole number as `parse_whole` reads it; plain digits read directly.
fn whole(raw: &str) -> Result<i64, Stop> {
    let b = raw.as_bytes();
    if !b.is_empty() && b.len() <= 18 && b.iter().all(u8::is_ascii_digit) {
        return Ok(b.iter().fold(0i64, |n, &d| n * 10 + i64::from(d - b'0')));
    }
    parse_whole("", raw).map_err(uncertain)
}

/// An amount as `parse_amount` reads it; `123` and `123.45` (up to the currency's decimals) read directly.
fn amount(raw: &str, currency: Currency) -> Result<i64, Stop> {
    let digits = usize::from(currency.minor_digits());
    let b = raw.as_bytes();
    let mut value = 0i64;
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        value = value * 10 + i64::from(b[i] - b'0');
        i += 1;
    }
    let whole = i;
    let mut decimals = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() && decimals < digits {
            value = value * 10 + i64::from(b[i] - b'0');
            decimals += 1;
            i += 1;
        }
        if decimals == 0 {
            i = usize::MAX; // "5." and "5.x": the full rules
        }
    }
    if whole == 0 || whole > 15 || i != b.len() {
        return parse_amount("", currency, raw).map_err(uncertain);
    }
    for _ in decimals..digits {
        value *= 10;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str, needed: usize) -> Result<Vec<String>, &'static str> {
        let mut f = Fields::new();
        let bytes = line.as_bytes();
        if memchr::memchr2(b'"', b'\r', bytes).is_none() {
            f.split_plain(bytes, needed);
        } else {
            match f.split_quoted(bytes, needed) {
                Ok(()) => {}
                Err(Stop::Uncertain) => return Err("uncertain"),
                Err(Stop::NotRecords) => return Err("not records"),
            }
        }
        Ok((0..needed).map(|i| f.get(line, i).into_owned()).collect())
    }

    fn csv_fields(line: &str, needed: usize) -> Vec<String> {
        let record = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(line.as_bytes())
            .records()
            .next()
            .map(|r| r.unwrap())
            .unwrap_or_default();
        (0..needed).map(|i| record.get(i).unwrap_or("").trim().to_owned()).collect()
    }

    #[test]
    fn lines_split_as_the_csv_crate_splits_them() {
        for line in [
            "a,b,c",
            "a,,c,",
            ",",
            "only",
            "a, b ,\"c, d\",\"e \"\"quoted\"\"\",f",
            "\"\",\"x\"",
            "averyveryverylongfirstfield,andasecondoneaslong,0123456789abcdef,x,y,z,,,,,",
            "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20",
            "\"a\rb\",c",
        ] {
            for needed in [1, 3, 5, 25] {
                assert_eq!(split(line, needed), Ok(csv_fields(line, needed)), "{line:?} {needed}");
            }
        }
        assert_eq!(split("a,b\"c,d", 4), Err("uncertain"));
        assert_eq!(split("a,\"b\"c,d", 4), Err("uncertain"));
        assert_eq!(split("a,\"b,d", 4), Err("not records"));
        assert_eq!(split("a,\"b\"\",d", 4), Err("not records"));
        assert_eq!(split("a,b\rc,d", 4), Err("not records"));
    }

    #[test]
    fn skus_are_numbered_by_their_text() {
        let text = "0123456789abcdefghij";
        for len in 0..=20 {
            let sku = &text.as_bytes()[..len];
            let mut word = [0u8; 16];
            if len <= 16 {
                word[..len].copy_from_slice(sku);
            }
            assert_eq!(SkuTable::pack(sku), (len <= 16).then(|| u128::from_le_bytes(word)), "{len}");
        }
        let mut table = SkuTable::default();
        let skus =
            ["TEA-CHA", "TEA-CHA\0", "A", "", "a-sku-longer-than-sixteen", "0123456789abcdef", "0123456789abcde"];
        for (i, sku) in skus.iter().enumerate() {
            assert_eq!(table.find(sku.as_bytes()), None);
            assert_eq!(table.intern(sku), i as u32);
        }
        for _ in 0..2 {
            for (i, sku) in skus.iter().enumerate() {
                assert_eq!(table.find(sku.as_bytes()), Some(i as u32), "{sku}");
                assert_eq!(table.intern(sku), i as u32);
            }
        }
        assert_eq!(table.find(b"TEA-CH"), None);
        assert_eq!(table.find(b"TEA-CHA\0\0"), None);
    }

    #[test]
    fn amounts_and_whole_numbers_read_as_the_full_reader_reads_them() {
        let eur = Currency::parse("c", "EUR").unwrap();
        let jpy = Currency::parse("c", "JPY").unwrap();
        let bhd = Currency::parse("c", "BHD").unwrap();
        for raw in [
            "0",
            "3",
            "3.9",
            "3.90",
            "3.905",
            "3.",
            ".5",
            "12,50",
            "1,234.50",
            "-1",
            "+2",
            "1e3",
            "",
            "x",
            "007.10",
            "999999999999999",
            "9999999999999999",
            "1.2.3",
        ] {
            for currency in [eur, jpy, bhd] {
                let full = parse_amount("", currency, raw).ok();
                assert_eq!(amount(raw, currency).ok(), full, "{raw} {currency}");
            }
            assert_eq!(whole(raw).ok(), parse_whole("", raw).ok(), "{raw}");
        }
    }
}
