//! `regulars analyze FILE`: the whole retention analysis of an export file, with no server and no
//! database. Orders are read with [`regulars_ingest::OrderReader`] (any import format), turned into a
//! [`regulars_analytics::TransactionLog`] (customer = the customer's external id, time = `placed_at`,
//! amount = order total less its refunds in minor units, SKUs from the lines), and handed to
//! [`regulars_analytics::analyze`]. The result is printed as a readable summary and, on request, written
//! as JSON (`--json`), a per-customer CSV (`--customers`) and a self-contained HTML report (`--report`).
//!
//! Large uncompressed files in the generic format are read in parallel: the file is cut into byte ranges
//! at order boundaries (a line whose `order_id` differs from the line before), one `OrderReader` runs per
//! range on the rayon pool, and the ranges' records are pushed into the log in file order, so the log is
//! the same as a sequential read gives. A file containing a double quote anywhere is read sequentially
//! (a quoted field could hide a line break, and a cut there would split a row).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use regulars_analytics::log::{CustomerKeyRef, PurchaseTime};
use regulars_analytics::report::ModelSelection;
use regulars_analytics::{
    AnalyzeOptions, LogOptions, Period, Report, TimeUnit, TransactionLog, TransactionLogBuilder, analyze,
    write_customers_csv,
};
use regulars_core::ImportedOrder;
use regulars_ingest::{ColumnMapping, Format, OrderReader, ReadOptions, Rejected};

#[derive(Args)]
pub struct AnalyzeArgs {
    /// The export to read (.csv, .txt, or either gzip-compressed)
    file: PathBuf,
    /// auto, generic, cdnow, shopify, woocommerce, stripe, or a column mapping (as for `regulars import`)
    #[arg(long, default_value = "auto")]
    format: Format,
    /// A column mapping for any other export (same as --format with a mapping)
    #[arg(long, conflicts_with = "format")]
    map: Option<ColumnMapping>,
    /// Time unit of the models, recency and age
    #[arg(long, value_enum, default_value_t = Unit::Week)]
    unit: Unit,
    /// End of the calibration period (YYYY-MM-DD, inclusive): fit on it, check against the rest
    #[arg(long)]
    calibration_end: Option<NaiveDate>,
    /// Date the analysis is as of (YYYY-MM-DD, inclusive); the last purchase in the file by default
    #[arg(long)]
    as_of: Option<NaiveDate>,
    /// Period of the cohort table
    #[arg(long, value_enum, default_value_t = CohortPeriod::Month)]
    cohort_period: CohortPeriod,
    /// CLV and expected-purchases horizon in months
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=1200))]
    horizon: u32,
    /// Monthly discount rate of the CLV (0.01 is 1 % a month)
    #[arg(long, default_value_t = 0.01, value_parser = parse_rate)]
    discount_rate: f64,
    /// Models to fit, comma-separated: bg_nbd, mbg_nbd, pareto_nbd, gamma_gamma
    #[arg(long, default_value = "bg_nbd,mbg_nbd,pareto_nbd,gamma_gamma", value_parser = parse_models)]
    models: ModelSelection,
    /// Write the report as JSON to FILE, or to standard output with `-`
    #[arg(long, value_name = "FILE|-")]
    json: Option<PathBuf>,
    /// Write every per-customer figure as CSV
    #[arg(long, value_name = "FILE.csv")]
    customers: Option<PathBuf>,
    /// Write a self-contained HTML report with inline SVG charts
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
    /// Length of the at-risk list
    #[arg(long, default_value_t = 25)]
    at_risk: usize,
}

#[derive(Clone, Copy, ValueEnum)]
enum Unit {
    Day,
    Week,
    Month,
}

#[derive(Clone, Copy, ValueEnum)]
enum CohortPeriod {
    Month,
    Week,
}

fn parse_rate(raw: &str) -> Result<f64, String> {
    let rate: f64 = raw.trim().parse().map_err(|_| format!("{raw:?} is not a number"))?;
    if !(0.0..1.0).contains(&rate) {
        return Err(format!("must be at least 0 and below 1 (a monthly rate such as 0.01), got {rate}"));
    }
    Ok(rate)
}

fn parse_models(raw: &str) -> Result<ModelSelection, String> {
    let mut selection = ModelSelection { bg_nbd: false, mbg_nbd: false, pareto_nbd: false, gamma_gamma: false };
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name.to_ascii_lowercase().replace(['-', '/'], "_").as_str() {
            "bg_nbd" | "bgnbd" => selection.bg_nbd = true,
            "mbg_nbd" | "mbgnbd" => selection.mbg_nbd = true,
            "pareto_nbd" | "paretonbd" | "pareto" => selection.pareto_nbd = true,
            "gamma_gamma" | "gammagamma" => selection.gamma_gamma = true,
            _ => return Err(format!("unknown model {name:?}; choose from bg_nbd, mbg_nbd, pareto_nbd, gamma_gamma")),
        }
    }
    if selection == (ModelSelection { bg_nbd: false, mbg_nbd: false, pareto_nbd: false, gamma_gamma: false }) {
        return Err("name at least one model".into());
    }
    Ok(selection)
}

/// Orders the reader rejected: how many, and the first few.
#[derive(Default)]
struct Rejects {
    count: u64,
    first: Vec<Rejected>,
}

impl Rejects {
    const KEEP: usize = 5;

    fn add(&mut self, rejected: Rejected) {
        self.count += 1;
        if self.first.len() < Self::KEEP {
            self.first.push(rejected);
        }
    }
}

/// What the analysis takes from one order: amount is the total less refunds, never below zero.
fn amount_of(imported: &ImportedOrder) -> i64 {
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

/// A customer key: a number when the id is one written canonically (no sign, no leading zero), so it
/// prints back unchanged; text otherwise.
fn key_of(id: &str) -> CustomerKeyRef<'_> {
    let canonical = !id.is_empty()
        && id.len() <= 19
        && id.bytes().all(|b| b.is_ascii_digit())
        && (id == "0" || !id.starts_with('0'));
    match canonical.then(|| id.parse::<u64>().ok()).flatten() {
        Some(n) => CustomerKeyRef::Number(n),
        None => CustomerKeyRef::Text(id),
    }
}

/// Records of a part of the file, kept flat until they are pushed in file order.
#[derive(Default)]
struct Batch {
    keys: String,
    key_end: Vec<u32>,
    times: Vec<PurchaseTime>,
    amounts: Vec<i64>,
    skus: String,
    sku_end: Vec<u32>,
    /// Per record: end index into `sku_end`.
    record_sku_end: Vec<u32>,
    currencies: BTreeMap<String, u64>,
}

impl Batch {
    fn add(&mut self, imported: &ImportedOrder) {
        let id = imported.customer.external_id.as_ref().map_or("", |id| id.as_str());
        self.keys.push_str(id);
        self.key_end.push(self.keys.len() as u32);
        self.times.push(PurchaseTime::from(imported.order.placed_at.naive_utc()));
        self.amounts.push(amount_of(imported));
        for line in &imported.order.lines {
            self.skus.push_str(line.sku.as_str());
            self.sku_end.push(self.skus.len() as u32);
        }
        self.record_sku_end.push(self.sku_end.len() as u32);
        count_currency(&mut self.currencies, imported);
    }

    fn push_into(&self, builder: &mut TransactionLogBuilder) -> Result<()> {
        let mut key_start = 0usize;
        let mut sku_index = 0usize;
        let mut sku_start = 0usize;
        let mut skus: Vec<&str> = Vec::new();
        for i in 0..self.times.len() {
            let key_end = self.key_end[i] as usize;
            skus.clear();
            while sku_index < self.record_sku_end[i] as usize {
                let end = self.sku_end[sku_index] as usize;
                skus.push(&self.skus[sku_start..end]);
                sku_start = end;
                sku_index += 1;
            }
            builder.push_with_skus(key_of(&self.keys[key_start..key_end]), self.times[i], self.amounts[i], &skus)?;
            key_start = key_end;
        }
        Ok(())
    }
}

fn count_currency(currencies: &mut BTreeMap<String, u64>, imported: &ImportedOrder) {
    let code = imported.order.currency.to_string();
    match currencies.get_mut(&code) {
        Some(n) => *n += 1,
        None => {
            currencies.insert(code, 1);
        }
    }
}

fn push_order(builder: &mut TransactionLogBuilder, imported: &ImportedOrder, skus: &mut Vec<String>) -> Result<()> {
    skus.clear();
    skus.extend(imported.order.lines.iter().map(|l| l.sku.as_str().to_owned()));
    let id = imported.customer.external_id.as_ref().map_or("", |id| id.as_str());
    builder.push_with_skus(
        key_of(id),
        PurchaseTime::from(imported.order.placed_at.naive_utc()),
        amount_of(imported),
        skus,
    )?;
    Ok(())
}

/// What loading the file produced.
struct Loaded {
    log: TransactionLog,
    rows: u64,
    orders: u64,
    skipped: u64,
    rejects: Rejects,
    detected: String,
    currencies: BTreeMap<String, u64>,
    parallel_parts: usize,
}

fn progress_bar(total: Option<u64>) -> ProgressBar {
    let bar = match total {
        Some(total) => ProgressBar::new(total),
        None => ProgressBar::new_spinner(),
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {binary_bytes}/{binary_total_bytes} {msg} (eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn read_options(args: &AnalyzeArgs) -> ReadOptions {
    let format = match &args.map {
        Some(mapping) => Format::Mapping(mapping.clone()),
        None => args.format.clone(),
    };
    ReadOptions { format, ..ReadOptions::default() }
}

/// Reads the whole file with one reader, pushing orders into the builder as they come.
fn load_sequential(path: &Path, options: &ReadOptions, log_options: LogOptions) -> Result<Loaded> {
    let mut reader = OrderReader::open(path, options).with_context(|| format!("open {}", path.display()))?;
    let detected = reader.detected().to_string();
    let progress = reader.progress();
    let bar = progress_bar(progress.total_bytes());
    let mut builder = TransactionLogBuilder::new(log_options);
    let mut rejects = Rejects::default();
    let mut currencies = BTreeMap::new();
    let mut skus = Vec::new();
    let mut n = 0u64;
    for item in &mut reader {
        match item {
            Ok(order) => {
                push_order(&mut builder, &order, &mut skus)?;
                count_currency(&mut currencies, &order);
            }
            Err(rejected) => rejects.add(rejected),
        }
        n += 1;
        if n.is_multiple_of(8192) {
            bar.set_position(progress.bytes_read());
            bar.set_message(format!("{} rows", progress.rows_read()));
        }
    }
    bar.finish_and_clear();
    let summary = reader.finish().with_context(|| format!("read {}", path.display()))?;
    Ok(Loaded {
        log: builder.build(),
        rows: summary.rows,
        orders: summary.orders,
        skipped: summary.skipped,
        rejects,
        detected,
        currencies,
        parallel_parts: 1,
    })
}

/// Reads `file[start..end]` with the header line in front, counting bytes, line breaks and double quotes.
struct RangeReader {
    header: Vec<u8>,
    header_pos: usize,
    file: Arc<File>,
    pos: u64,
    end: u64,
    read_total: Arc<AtomicU64>,
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.header_pos < self.header.len() {
            let n = (self.header.len() - self.header_pos).min(buf.len());
            buf[..n].copy_from_slice(&self.header[self.header_pos..self.header_pos + n]);
            self.header_pos += n;
            return Ok(n);
        }
        let want = ((self.end - self.pos) as usize).min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        self.read_total.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The `order_id` of a generic CSV line, unquoted (lines passed [`line_is_simple`]; a quoted id holding a
/// comma is compared by its part up to the comma, which can only move a cut, never split an order).
fn order_id_field(line: &[u8], column: usize) -> Vec<u8> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let raw = line.split(|&b| b == b',').nth(column).unwrap_or(b"");
    match raw.strip_prefix(b"\"") {
        Some(inner) => {
            let inner = inner.strip_suffix(b"\"").unwrap_or(inner);
            String::from_utf8_lossy(inner).replace("\"\"", "\"").into_bytes()
        }
        None => raw.to_vec(),
    }
}

/// Whether a line is whole CSV records on its own: every double quote opens a field, closes it, or is
/// doubled inside it, and the line does not end inside a quoted field.
fn line_is_simple(line: &[u8]) -> bool {
    if !line.contains(&b'"') {
        return true;
    }
    let mut i = 0;
    let n = line.len();
    loop {
        // At the start of a field.
        if i < n && line[i] == b'"' {
            i += 1;
            loop {
                match line[i..].iter().position(|&b| b == b'"') {
                    None => return false, // the line ends inside quotes
                    Some(q) => {
                        i += q + 1;
                        if i < n && line[i] == b'"' {
                            i += 1; // a doubled quote
                        } else {
                            break;
                        }
                    }
                }
            }
            // After the closing quote: the end of the field.
            match line.get(i) {
                None | Some(b'\r') if i + 1 >= n => return true,
                Some(b',') => i += 1,
                _ => return false,
            }
        } else {
            match line[i..].iter().position(|&b| b == b',' || b == b'"') {
                None => return true,
                Some(p) if line[i + p] == b',' => i += p + 1,
                Some(_) => return false, // a quote inside an unquoted field
            }
        }
    }
}

/// The first order boundary at or after `from`: the start of a non-empty line whose order id differs from
/// the line before it. `None` when the file ends first.
fn boundary_after(file: &File, from: u64, size: u64, column: usize) -> std::io::Result<Option<u64>> {
    let mut window = vec![0u8; 1 << 20];
    let mut offset = from;
    let mut carry: Vec<u8> = Vec::new();
    let mut carry_start = from;
    let mut skipped_partial = false;
    let mut first_key: Option<Vec<u8>> = None;
    while offset < size {
        let n = file.read_at(&mut window, offset)?;
        if n == 0 {
            break;
        }
        carry.extend_from_slice(&window[..n]);
        offset += n as u64;
        let mut line_start = 0usize;
        while let Some(nl) = carry[line_start..].iter().position(|&b| b == b'\n') {
            let line = &carry[line_start..line_start + nl];
            let absolute = carry_start + line_start as u64;
            line_start += nl + 1;
            if !skipped_partial {
                // The (possibly partial) line `from` falls into; a whole line when `from` is a line start.
                skipped_partial = true;
                continue;
            }
            if line.strip_suffix(b"\r").unwrap_or(line).is_empty() {
                continue;
            }
            let key = order_id_field(line, column);
            match &first_key {
                None => first_key = Some(key),
                Some(k) if *k != key => return Ok(Some(absolute)),
                Some(_) => {}
            }
        }
        carry.drain(..line_start);
        carry_start += line_start as u64;
    }
    Ok(None)
}

/// Counts the line breaks of `file[start..end]`; `None` when a line is not whole records.
fn check_range(file: &File, start: u64, end: u64) -> std::io::Result<Option<u64>> {
    let mut buf = vec![0u8; 1 << 20];
    let mut carry: Vec<u8> = Vec::new();
    let mut pos = start;
    let mut lines = 0u64;
    while pos < end {
        let want = ((end - pos) as usize).min(buf.len());
        let n = file.read_at(&mut buf[..want], pos)?;
        if n == 0 {
            break;
        }
        pos += n as u64;
        let data = &buf[..n];
        lines += data.iter().filter(|&&b| b == b'\n').count() as u64;
        if !data.contains(&b'"') && !carry.contains(&b'"') {
            // No quote: every line is simple. Keep only the unfinished last line.
            if let Some(last) = data.iter().rposition(|&b| b == b'\n') {
                carry.clear();
                carry.extend_from_slice(&data[last + 1..]);
            } else {
                carry.extend_from_slice(data);
            }
            continue;
        }
        carry.extend_from_slice(data);
        let mut line_start = 0;
        while let Some(nl) = carry[line_start..].iter().position(|&b| b == b'\n') {
            if !line_is_simple(&carry[line_start..line_start + nl]) {
                return Ok(None);
            }
            line_start += nl + 1;
        }
        carry.drain(..line_start);
    }
    Ok(line_is_simple(&carry).then_some(lines))
}

const PARALLEL_MIN_BYTES: u64 = 32 << 20;

/// Reads a large uncompressed generic CSV in parallel ranges; `None` when the file does not qualify
/// (compressed, another format, small, a double quote somewhere) and must be read sequentially.
fn load_parallel(path: &Path, options: &ReadOptions, log_options: LogOptions) -> Result<Option<Loaded>> {
    let threads = rayon::current_num_threads();
    if threads < 2 || !matches!(options.format, Format::Auto | Format::Generic) {
        return Ok(None);
    }
    let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let size = file.metadata()?.len();
    if size < PARALLEL_MIN_BYTES {
        return Ok(None);
    }
    let mut head = vec![0u8; 64 * 1024];
    let n = file.read_at(&mut head, 0)?;
    head.truncate(n);
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(None);
    }
    let Some(header_end) = head.iter().position(|&b| b == b'\n') else { return Ok(None) };
    let header = head[..=header_end].to_vec();
    // Let the ingest crate decide the format from the header alone.
    let detected = OrderReader::from_reader(std::io::Cursor::new(head.clone()), options)
        .with_context(|| format!("open {}", path.display()))?
        .detected()
        .clone();
    if detected.format != Format::Generic
        || detected.delimiter != regulars_ingest::Delimiter::Comma
        || header.contains(&b'"')
    {
        return Ok(None);
    }
    let header_text = String::from_utf8_lossy(&header);
    let Some(order_column) =
        header_text.trim_start_matches('\u{feff}').trim_end().split(',').position(|c| c == "order_id")
    else {
        return Ok(None);
    };
    // Cut points: about two ranges per thread, each moved forward to an order boundary.
    let parts = (threads * 4) as u64;
    let body = size - header.len() as u64;
    let mut cuts = vec![header.len() as u64];
    for i in 1..parts {
        let target = header.len() as u64 + body * i / parts;
        if target <= *cuts.last().expect("one cut") {
            continue;
        }
        match boundary_after(&file, target, size, order_column)? {
            Some(cut) if cut > *cuts.last().expect("one cut") => cuts.push(cut),
            Some(_) => {}
            None => break,
        }
    }
    cuts.push(size);
    cuts.dedup();
    // Every range reads dates the way the start of the file says (a range's own sample might differ).
    let options = &ReadOptions { slash_date_order: Some(detected.slash_date_order), ..options.clone() };
    let file = Arc::new(file);
    let read_total = Arc::new(AtomicU64::new(0));
    let ranges: Vec<(u64, u64)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
    // Every line must be whole records (no line break inside quotes), else the cuts may split a row.
    // The same pass counts lines, for the line numbers of rejects.
    let checked: Vec<Option<u64>> =
        ranges.par_iter().map(|&(start, end)| check_range(&file, start, end)).collect::<std::io::Result<_>>()?;
    let mut line_offsets = Vec::with_capacity(ranges.len());
    let mut before = 1u64; // the header line
    for lines in &checked {
        let Some(lines) = lines else { return Ok(None) };
        line_offsets.push(before);
        before += lines;
    }
    let bar = progress_bar(Some(size));
    type PartResult = Result<(Batch, u64, u64, u64, Rejects)>;
    let watcher = {
        let bar = bar.clone();
        let read_total = read_total.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        let handle = std::thread::spawn(move || {
            while !stop_flag.load(Ordering::Relaxed) {
                bar.set_position(read_total.load(Ordering::Relaxed));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        (stop, handle)
    };
    let results: Vec<PartResult> = ranges
        .par_iter()
        .map(|&(start, end)| -> PartResult {
            let input = RangeReader {
                header: header.clone(),
                header_pos: 0,
                file: file.clone(),
                pos: start,
                end,
                read_total: read_total.clone(),
            };
            let mut reader = OrderReader::from_reader(input, options)?;
            let mut batch = Batch::default();
            let mut rejects = Rejects::default();
            for item in &mut reader {
                match item {
                    Ok(order) => batch.add(&order),
                    Err(rejected) => rejects.add(rejected),
                }
            }
            let summary = reader.finish()?;
            Ok((batch, summary.rows, summary.orders, summary.skipped, rejects))
        })
        .collect();
    watcher.0.store(true, Ordering::Relaxed);
    let _ = watcher.1.join();
    bar.finish_and_clear();
    let mut builder = TransactionLogBuilder::new(log_options);
    let mut loaded_rejects = Rejects::default();
    let (mut rows, mut orders, mut skipped) = (0, 0, 0);
    let mut currencies: BTreeMap<String, u64> = BTreeMap::new();
    for (part, result) in results.into_iter().enumerate() {
        let (batch, r, o, s, rejects) = result?;
        batch.push_into(&mut builder)?;
        rows += r;
        orders += o;
        skipped += s;
        loaded_rejects.count += rejects.count;
        for mut rejected in rejects.first {
            rejected.line_number = rejected.line_number + line_offsets[part] - 1;
            if loaded_rejects.first.len() < Rejects::KEEP {
                loaded_rejects.first.push(rejected);
            }
        }
        for (code, n) in batch.currencies {
            *currencies.entry(code).or_default() += n;
        }
    }
    Ok(Some(Loaded {
        log: builder.build(),
        rows,
        orders,
        skipped,
        rejects: loaded_rejects,
        detected: detected.to_string(),
        currencies,
        parallel_parts: ranges.len(),
    }))
}

fn analyze_options(args: &AnalyzeArgs) -> (LogOptions, AnalyzeOptions) {
    let unit = match args.unit {
        Unit::Day => TimeUnit::Day,
        Unit::Week => TimeUnit::Week,
        Unit::Month => TimeUnit::Month,
    };
    let options = AnalyzeOptions {
        time_unit: Some(unit),
        calibration_end: args.calibration_end,
        cohort_period: match args.cohort_period {
            CohortPeriod::Month => Period::Month,
            CohortPeriod::Week => Period::Week,
        },
        horizon_months: args.horizon,
        monthly_discount_rate: args.discount_rate,
        models: args.models,
        at_risk_limit: args.at_risk,
        ..AnalyzeOptions::default()
    };
    (LogOptions { time_unit: unit, ..LogOptions::default() }, options)
}

pub fn run(args: AnalyzeArgs) -> Result<()> {
    let started = Instant::now();
    let (log_options, options) = analyze_options(&args);
    let read = read_options(&args);
    let loaded = match load_parallel(&args.file, &read, log_options)? {
        Some(loaded) => loaded,
        None => load_sequential(&args.file, &read, log_options)?,
    };
    let read_seconds = started.elapsed().as_secs_f64();
    if loaded.rejects.count > 0 {
        eprintln!("regulars analyze: {} orders or rows rejected and left out; the first:", loaded.rejects.count);
        for r in &loaded.rejects.first {
            eprintln!("  {r}");
        }
    }
    let log = &loaded.log;
    let Some((_, last_day)) = log.day_range() else {
        bail!(
            "{}: no orders could be read ({} rows, {} rejected)",
            args.file.display(),
            loaded.rows,
            loaded.rejects.count
        );
    };
    let as_of = args.as_of.unwrap_or_else(|| regulars_analytics::log::date_of_day_number(last_day));
    if let Some(end) = args.calibration_end
        && end >= as_of
    {
        bail!("--calibration-end {end} must be before the analysis date {as_of} (--as-of, or the last purchase)");
    }
    let analyze_started = Instant::now();
    let report = analyze(log, &options, as_of).context("analyze")?;
    let analyze_seconds = analyze_started.elapsed().as_secs_f64();

    let to_stdout = args.json.as_deref() == Some(Path::new("-"));
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).context("serialise the report")?;
        if to_stdout {
            let mut out = std::io::stdout().lock();
            out.write_all(json.as_bytes())?;
            out.write_all(b"\n")?;
        } else {
            std::fs::write(path, json).with_context(|| format!("write {}", path.display()))?;
        }
    }
    if let Some(path) = &args.customers {
        let file = File::create(path).with_context(|| format!("create {}", path.display()))?;
        write_customers_csv(&report, BufWriter::with_capacity(1 << 20, file))
            .with_context(|| format!("write {}", path.display()))?;
    }
    if let Some(path) = &args.report {
        std::fs::write(path, regulars_analytics::html::render_html(&report))
            .with_context(|| format!("write {}", path.display()))?;
    }
    let summary = render_summary(&args, &loaded, &report, read_seconds, analyze_seconds, started);
    // With the JSON on standard output, the summary goes to standard error.
    if to_stdout {
        eprint!("{summary}");
    } else {
        print!("{summary}");
    }
    Ok(())
}

fn money(minor: f64) -> String {
    format!("{:.2}", minor / 100.0)
}

fn render_summary(
    args: &AnalyzeArgs,
    loaded: &Loaded,
    report: &Report,
    read_seconds: f64,
    analyze_seconds: f64,
    started: Instant,
) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} ({}): {} rows, {} orders, {} rejected, {} skipped; read in {:.2} s{}",
        args.file.display(),
        loaded.detected,
        loaded.rows,
        loaded.orders,
        loaded.rejects.count,
        loaded.skipped,
        read_seconds,
        if loaded.parallel_parts > 1 {
            format!(" ({} parts in parallel)", loaded.parallel_parts)
        } else {
            String::new()
        }
    );
    if loaded.currencies.len() > 1 {
        let list: Vec<String> = loaded.currencies.iter().map(|(c, n)| format!("{c} {n}")).collect();
        let _ = writeln!(s, "warning: several currencies ({}); amounts are added as they are", list.join(", "));
    }
    let m = &report.metrics.shop;
    let _ = writeln!(
        s,
        "as of {} ({} units{}): {} customers, {} transactions ({} records), {} to {}",
        report.as_of,
        format!("{:?}", report.time_unit).to_lowercase(),
        report.calibration_end.map(|d| format!(", calibration to {d}")).unwrap_or_default(),
        report.customers,
        report.transactions,
        report.records,
        report.first_purchase,
        report.last_purchase
    );
    let _ = writeln!(
        s,
        "repeat purchase rate {:.1} %, average order value {}, {:.2} purchases per customer-year, revenue {}",
        m.repeat_purchase_rate * 100.0,
        money(m.average_order_value),
        m.purchase_frequency_per_year,
        money(m.revenue as f64)
    );
    let models = &report.models;
    let _ = writeln!(
        s,
        "\nmodels (fitted on {} customers through {}):",
        models.fitted_customers,
        models.fitted_through.map(|d| d.to_string()).unwrap_or_default()
    );
    let converged = |c: bool| if c { "converged" } else { "NOT converged" };
    for (name, fit) in [("BG/NBD ", &models.bg_nbd), ("MBG/NBD", &models.mbg_nbd)] {
        if let Some(f) = fit {
            let p = &f.params;
            let _ = writeln!(
                s,
                "  {name}     r={:.4} alpha={:.4} a={:.4} b={:.4}  LL={:.2}  {}",
                p.r,
                p.alpha,
                p.a,
                p.b,
                f.log_likelihood,
                converged(f.diagnostics.converged)
            );
        }
    }
    if let Some(f) = &models.pareto_nbd {
        let p = &f.params;
        let _ = writeln!(
            s,
            "  Pareto/NBD  r={:.4} alpha={:.4} s={:.4} beta={:.4}  LL={:.2}  {}",
            p.r,
            p.alpha,
            p.s,
            p.beta,
            f.log_likelihood,
            converged(f.diagnostics.converged)
        );
    }
    if let Some(f) = &models.gamma_gamma {
        let p = &f.params;
        let _ = writeln!(
            s,
            "  Gamma-Gamma p={:.4} q={:.4} v={:.4}  LL={:.2}  {}",
            p.p,
            p.q,
            p.v,
            f.log_likelihood,
            converged(f.diagnostics.converged)
        );
    }
    for (name, error) in &models.errors {
        let _ = writeln!(s, "  {name}: not fitted: {error}");
    }
    if let Some(clv) = &report.clv {
        let _ = writeln!(
            s,
            "\nCLV ({}, {} months, {:.1} %/month discount): total {}, mean {}, median {} over {} customers{}",
            clv.model,
            clv.horizon_months,
            clv.monthly_discount_rate * 100.0,
            money(clv.total),
            money(clv.mean),
            money(clv.median),
            clv.customers_valued,
            if clv.customers_without_value > 0 {
                format!(" ({} without a value)", clv.customers_without_value)
            } else {
                String::new()
            }
        );
    }
    if let Some(h) = &report.holdout {
        let _ = writeln!(
            s,
            "holdout check ({}, {:.1} units): {:.0} repeat transactions predicted, {:.0} actual",
            h.model, h.duration, h.predicted_total, h.actual_total
        );
    }
    let mut segments: Vec<(&String, &u64)> = report.rfm.segments.iter().collect();
    segments.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let _ = writeln!(s, "\nRFM segments:");
    for (name, count) in segments.iter().take(11) {
        let share = **count as f64 / report.customers.max(1) as f64 * 100.0;
        let _ = writeln!(s, "  {name:<20} {count:>10}  {share:5.1} %");
    }
    if !report.at_risk.is_empty() {
        let _ = writeln!(s, "\nat risk (value at risk = (1 - P(alive)) x spend):");
        for c in report.at_risk.iter().take(10) {
            let _ = writeln!(
                s,
                "  {:<24} {:<18} {:>4} repeats  spend {:>10}  {:>5} days since  P(alive) {:.2}  at risk {}",
                c.customer.to_string(),
                c.segment,
                c.frequency,
                money(c.total_spend as f64),
                c.days_since_last_purchase,
                c.probability_alive,
                money(c.value_at_risk)
            );
        }
    }
    if !report.diagnostics.is_empty() {
        let _ = writeln!(s, "\ndiagnostics:");
        for note in &report.diagnostics {
            let _ = writeln!(s, "  {note}");
        }
    }
    let _ = writeln!(
        s,
        "\nread {:.2} s, analyze {:.2} s, total {:.2} s",
        read_seconds,
        analyze_seconds,
        started.elapsed().as_secs_f64()
    );
    s
}
