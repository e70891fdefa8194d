//! `regulars analyze FILE`: the whole retention analysis of an export file, with no server and no
//! database. Orders are read with [`regulars_ingest::OrderReader`] (any import format), reduced to their
//! [`regulars_ingest::OrderFacts`] (customer = the customer's external id, time = `placed_at`, amount =
//! order total less its refunds in minor units, SKUs from the lines), pushed into a
//! [`regulars_analytics::TransactionLog`] and handed to [`regulars_analytics::analyze`]. The result is
//! printed as a readable summary and, on request, written as JSON (`--json`), a per-customer CSV
//! (`--customers`) and a self-contained HTML report (`--report`).
//!
//! Uncompressed files in the generic format are read by [`regulars_ingest::FactsReader`]: cut into parts
//! at order boundaries, parsed in parallel by a parser that reads only what the analysis needs (and
//! checks what the full reader checks), each part into a log builder of its own; the log is built straight
//! from the builders in file order ([`TransactionLogBuilder::build_parts`]), so it is the one a sequential
//! read gives. Parts the fast parser is not certain of
//! are read by the full reader; files whose lines are not records (a quoted field holding a line break)
//! are read sequentially.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use regulars_analytics::log::{CustomerKeyRef, PurchaseTime};
use regulars_analytics::report::ModelSelection;
use regulars_analytics::{
    AnalyticsError, AnalyzeOptions, LogOptions, Period, Report, TimeUnit, TransactionLog, TransactionLogBuilder,
    analyze, write_customers_csv,
};
use regulars_core::Currency;
use regulars_ingest::{
    ColumnMapping, FactsReader, FactsSink, Format, OrderFacts, OrderReader, PartRoom, ReadOptions, Rejected, facts_of,
};

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
    /// Read every row with the full import reader, never the analysis-only parser (for checking)
    #[arg(long, hide = true)]
    full_reader: bool,
    /// Size of the parts a generic CSV is cut into for parallel reading (for testing)
    #[arg(long, hide = true)]
    part_bytes: Option<u64>,
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

/// Pushes the facts of orders into a log builder (one per part of the file when read in parallel).
struct LogSink {
    builder: TransactionLogBuilder,
    currencies: Vec<(Currency, u64)>,
    error: Option<AnalyticsError>,
    /// The builder's id of each SKU number of the reader ([`OrderFacts::sku_ids`]); `u32::MAX` for none yet.
    sku_map: Vec<u32>,
    /// The builder's ids of the order at hand.
    sku_ids: Vec<u32>,
}

impl LogSink {
    fn new(options: LogOptions) -> Self {
        LogSink {
            builder: TransactionLogBuilder::new(options),
            currencies: Vec::new(),
            error: None,
            sku_map: Vec::new(),
            sku_ids: Vec::new(),
        }
    }
}

impl FactsSink for LogSink {
    fn part(&mut self, room: PartRoom) {
        self.builder.reserve(room.orders, room.skus);
    }

    fn order(&mut self, facts: &OrderFacts<'_>) {
        if self.error.is_some() {
            return;
        }
        let at = PurchaseTime::from(facts.placed_at);
        let pushed = match facts.sku_ids {
            Some(numbers) if numbers.len() == facts.skus.len() => {
                // The builder's ids by the reader's numbers: each SKU's text is looked up once.
                self.sku_ids.clear();
                for (&number, &sku) in numbers.iter().zip(facts.skus) {
                    let number = number as usize;
                    if number >= self.sku_map.len() {
                        self.sku_map.resize(number + 1, u32::MAX);
                    }
                    if self.sku_map[number] == u32::MAX {
                        self.sku_map[number] = self.builder.intern_sku(sku);
                    }
                    self.sku_ids.push(self.sku_map[number]);
                }
                self.builder.push_with_sku_ids(key_of(facts.customer), at, facts.net_minor, &self.sku_ids)
            }
            _ => self.builder.push_with_skus(key_of(facts.customer), at, facts.net_minor, facts.skus),
        };
        if let Err(error) = pushed {
            self.error = Some(error);
        }
        match self.currencies.iter_mut().find(|(c, _)| *c == facts.currency) {
            Some((_, n)) => *n += 1,
            None => self.currencies.push((facts.currency, 1)),
        }
    }
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
    /// Parts read in parallel, and how many of them by the full reader.
    parallel_parts: Option<(usize, usize)>,
}

impl Loaded {
    /// The log and currency counts of the sinks, joined in order.
    fn join(sinks: Vec<LogSink>, options: LogOptions) -> Result<(TransactionLog, BTreeMap<String, u64>)> {
        let mut currencies: BTreeMap<String, u64> = BTreeMap::new();
        let mut builders = Vec::with_capacity(sinks.len());
        for sink in sinks {
            if let Some(error) = sink.error {
                return Err(error.into());
            }
            for (currency, n) in sink.currencies {
                *currencies.entry(currency.to_string()).or_default() += n;
            }
            builders.push(sink.builder);
        }
        // Several parts: built straight from them, without a joined copy.
        let log = match builders.len() {
            1 => builders.pop().expect("one builder").build(),
            _ => TransactionLogBuilder::build_parts(options, builders)?,
        };
        Ok((log, currencies))
    }
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

/// Reads the whole file with one reader, pushing orders into the log as they come.
fn load_sequential(path: &Path, options: &ReadOptions, log_options: LogOptions) -> Result<Loaded> {
    let mut reader = OrderReader::open(path, options).with_context(|| format!("open {}", path.display()))?;
    let detected = reader.detected().to_string();
    let progress = reader.progress();
    let bar = progress_bar(progress.total_bytes());
    let mut sink = LogSink::new(log_options);
    let mut rejects = Rejects::default();
    let mut n = 0u64;
    for item in &mut reader {
        match item {
            Ok(order) => facts_of(&order, &mut sink),
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
    let (log, currencies) = Loaded::join(vec![sink], log_options)?;
    Ok(Loaded {
        log,
        rows: summary.rows,
        orders: summary.orders,
        skipped: summary.skipped,
        rejects,
        detected,
        currencies,
        parallel_parts: None,
    })
}

/// Reads an uncompressed generic CSV with the analysis-only parser of `regulars_ingest::facts`, in
/// parallel parts; `None` when the file does not qualify and must be read sequentially.
fn load_parallel(
    path: &Path,
    options: &ReadOptions,
    log_options: LogOptions,
    part_bytes: Option<u64>,
) -> Result<Option<Loaded>> {
    let Some(mut reader) = FactsReader::open(path, options).with_context(|| format!("open {}", path.display()))? else {
        return Ok(None);
    };
    if let Some(bytes) = part_bytes {
        reader = reader.part_bytes(bytes);
    }
    let reader = reader.keep_rejects(Rejects::KEEP);
    let progress = reader.progress();
    let bar = progress_bar(progress.total_bytes());
    let (stop, watcher) = {
        let bar = bar.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        let handle = std::thread::spawn(move || {
            while !stop_flag.load(Ordering::Relaxed) {
                bar.set_position(progress.bytes_read());
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        (stop, handle)
    };
    let read = reader.read(|| LogSink::new(log_options));
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    bar.finish_and_clear();
    let Some(read) = read.with_context(|| format!("read {}", path.display()))? else {
        return Ok(None);
    };
    let (log, currencies) = Loaded::join(read.sinks, log_options)?;
    Ok(Some(Loaded {
        log,
        rows: read.summary.rows,
        orders: read.summary.orders,
        skipped: read.summary.skipped,
        rejects: Rejects { count: read.summary.rejected, first: read.rejected },
        detected: reader.detected().to_string(),
        currencies,
        parallel_parts: Some((read.parts, read.parts_read_in_full)),
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
    let parallel =
        if args.full_reader { None } else { load_parallel(&args.file, &read, log_options, args.part_bytes)? };
    let loaded = match parallel {
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
        match loaded.parallel_parts {
            Some((parts, 0)) => format!(" ({parts} parts in parallel)"),
            Some((parts, full)) => format!(" ({parts} parts in parallel, {full} by the full reader)"),
            None => String::new(),
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
    if let Some(counts) = &report.purchase_counts {
        let p = &counts.new_customer;
        let _ = writeln!(
            s,
            "next {} months ({}): {:.0} customers expected to buy nothing, {:.0} once, {:.0} twice or more; \
             a new customer: P(0) {:.2}, P(1) {:.2}, P(2+) {:.2}",
            counts.horizon_months,
            counts.model,
            counts.customers_none,
            counts.customers_one,
            counts.customers_two_or_more,
            p[0],
            p[1],
            1.0 - p[0] - p[1]
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
