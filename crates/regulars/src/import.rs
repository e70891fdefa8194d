//! `regulars import`: streams an export file into the store in batches, with a progress bar and a
//! rejects file next to the input. Reading runs on its own thread, writing on the runtime, so the
//! two overlap.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use regulars_core::ImportedOrder;
use regulars_ingest::{ColumnMapping, Format, OrderReader, ReadOptions, ReadSummary, Rejected};
use regulars_store::ImportSummary;

use crate::DatabaseArg;

#[derive(Args)]
pub struct ImportArgs {
    /// The export to read (.csv, .txt, or either gzip-compressed)
    file: PathBuf,
    #[command(flatten)]
    db: DatabaseArg,
    /// auto, generic, cdnow, shopify, woocommerce, stripe, or a column mapping such as
    /// "order_id=Order No,customer_id=Email,placed_at=Date,sku=SKU,quantity=Qty,unit_price=Price,currency=EUR"
    #[arg(long, env = "REGULARS_IMPORT_FORMAT", default_value = "auto")]
    format: Format,
    /// A column mapping for any other export (same as --format with a mapping), e.g.
    /// "order_id=Order No,customer_id=Email,placed_at=Date,sku=SKU,quantity=Qty,unit_price=Price,currency=EUR"
    #[arg(long, env = "REGULARS_IMPORT_MAP", conflicts_with = "format")]
    map: Option<ColumnMapping>,
    /// Refuse the whole file, writing nothing, if any row cannot be read
    #[arg(long)]
    strict: bool,
    /// Time zone of timestamps written without one (IANA name); UTC by default
    #[arg(long, env = "REGULARS_IMPORT_TIME_ZONE")]
    time_zone: Option<chrono_tz_arg::TzArg>,
    /// Orders written per transaction. Larger batches import faster; memory grows with them (about
    /// 1.5 KB per order in flight, three batches at a time)
    #[arg(long, default_value_t = 10000)]
    batch_size: usize,
}

/// Parses a time zone flag through the core's validation.
mod chrono_tz_arg {
    #[derive(Clone, Debug)]
    pub struct TzArg(pub String);

    impl std::str::FromStr for TzArg {
        type Err = String;
        fn from_str(s: &str) -> Result<Self, String> {
            regulars_core::customer::parse_time_zone("--time-zone", s).map(TzArg).map_err(|e| e.to_string())
        }
    }
}

fn rejects_path(input: &Path) -> PathBuf {
    let mut name = input.file_name().unwrap_or_default().to_os_string();
    name.push(".rejects.csv");
    input.with_file_name(name)
}

/// Writes `line,reason` rows, creating the file on the first reject.
struct RejectsFile {
    path: PathBuf,
    out: Option<csv::Writer<File>>,
    count: u64,
}

impl RejectsFile {
    fn new(input: &Path) -> Self {
        RejectsFile { path: rejects_path(input), out: None, count: 0 }
    }

    fn add(&mut self, r: &Rejected) -> Result<()> {
        if self.out.is_none() {
            let file = File::create(&self.path).with_context(|| format!("create {}", self.path.display()))?;
            let mut w = csv::Writer::from_writer(file);
            w.write_record(["line", "reason"])?;
            self.out = Some(w);
        }
        let w = self.out.as_mut().expect("opened above");
        w.write_record([r.line_number.to_string().as_str(), r.reason.as_str()])?;
        self.count += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<u64> {
        if let Some(mut w) = self.out.take() {
            w.flush()?;
        } else if self.path.exists() {
            // A rejects file from an earlier run would now be misleading.
            std::fs::remove_file(&self.path).ok();
        }
        Ok(self.count)
    }
}

fn options(args: &ImportArgs) -> Result<ReadOptions> {
    let time_zone = args
        .time_zone
        .as_ref()
        .map(|tz| tz.0.parse().map_err(|_| anyhow::anyhow!("unknown time zone {}", tz.0)))
        .transpose()?;
    let format = match &args.map {
        Some(mapping) => Format::Mapping(mapping.clone()),
        None => args.format.clone(),
    };
    Ok(ReadOptions { format, time_zone, ..ReadOptions::default() })
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

fn update(bar: &ProgressBar, reader_progress: &regulars_ingest::Progress, started: Instant) {
    let rows = reader_progress.rows_read();
    let rate = rows as f64 / started.elapsed().as_secs_f64().max(1e-3);
    bar.set_position(reader_progress.bytes_read());
    bar.set_message(format!("{rows} rows, {rate:.0} rows/s"));
}

pub async fn run(args: ImportArgs) -> Result<()> {
    let started = Instant::now();
    let options = options(&args)?;
    if args.strict {
        // First pass: read everything, write nothing.
        let (summary, rejects) = check_only(&args.file, &options)?;
        if rejects > 0 {
            bail!(
                "{} of {} rows could not be read; nothing was imported (--strict). Reasons: {}",
                rejects,
                summary.rows,
                rejects_path(&args.file).display()
            );
        }
    }
    let store = crate::open(&args.db).await?;
    let mut reader =
        OrderReader::open(&args.file, &options).with_context(|| format!("open {}", args.file.display()))?;
    let detected = reader.detected().to_string();
    let progress = reader.progress();
    let bar = progress_bar(progress.total_bytes());
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<ImportedOrder>>(2);
    let batch_size = args.batch_size.max(1);
    let rejects_at = args.file.clone();
    // Reading and parsing on a thread of its own, batches handed over through the channel.
    let reading = std::thread::spawn(move || -> Result<(ReadSummary, u64)> {
        let mut rejects = RejectsFile::new(&rejects_at);
        let mut batch = Vec::with_capacity(batch_size);
        for item in &mut reader {
            match item {
                Ok(order) => {
                    batch.push(order);
                    if batch.len() == batch_size
                        && tx.blocking_send(std::mem::replace(&mut batch, Vec::with_capacity(batch_size))).is_err()
                    {
                        break;
                    }
                }
                Err(rejected) => rejects.add(&rejected)?,
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(batch);
        }
        drop(tx);
        let summary = reader.finish()?;
        Ok((summary, rejects.finish()?))
    });
    let mut written = ImportSummary::default();
    while let Some(batch) = rx.recv().await {
        update(&bar, &progress, started);
        written += store.import_orders(batch, Utc::now()).await.context("write imported orders")?;
    }
    let (summary, rejected) = reading.join().map_err(|_| anyhow::anyhow!("the reader thread panicked"))??;
    update(&bar, &progress, started);
    // The batches committed without waiting for the disk; success is reported once they are on it.
    store.sync().await.context("sync the imported orders to disk")?;
    bar.finish_and_clear();
    store.close().await;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "imported {} as {detected}: {} rows in {:.1} s ({:.0} rows/s)\n  orders: {} new, {} already present, {} skipped (cancelled or failed)\n  customers: {} new\n  refunds: {} new\n  rejected: {}{}",
        args.file.display(),
        summary.rows,
        seconds,
        summary.rows as f64 / seconds.max(1e-9),
        written.orders_created,
        written.orders_existing,
        summary.skipped,
        written.customers_created,
        written.refunds_created,
        rejected,
        if rejected > 0 { format!(" (see {})", rejects_path(&args.file).display()) } else { String::new() },
    );
    Ok(())
}

/// Reads the whole file and writes its rejects, without touching the database.
fn check_only(path: &Path, options: &ReadOptions) -> Result<(ReadSummary, u64)> {
    let mut reader = OrderReader::open(path, options).with_context(|| format!("open {}", path.display()))?;
    let mut rejects = RejectsFile::new(path);
    for item in &mut reader {
        if let Err(rejected) = item {
            rejects.add(&rejected)?;
        }
    }
    let summary = reader.finish()?;
    Ok((summary, rejects.finish()?))
}
