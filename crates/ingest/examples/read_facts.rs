//! Reads the order facts of a generic CSV with the parallel analysis-only reader and prints counts and
//! speed, for benchmarks: `cargo run --release -p regulars-ingest --example read_facts -- FILE`
//! (`RAYON_NUM_THREADS=1` for one thread; `--log` also pushes every order into a transaction log builder
//! per part, as `regulars analyze` does).

use std::time::Instant;

use regulars_analytics::TransactionLogBuilder;
use regulars_analytics::log::PurchaseTime;
use regulars_ingest::{FactsReader, FactsSink, OrderFacts, PartRoom, ReadOptions};

#[derive(Default)]
struct Totals {
    orders: u64,
    lines: u64,
    net_minor: i64,
    log: Option<TransactionLogBuilder>,
}

impl FactsSink for Totals {
    fn part(&mut self, room: PartRoom) {
        if let Some(log) = &mut self.log {
            log.reserve(room.orders, room.skus);
        }
    }

    fn order(&mut self, facts: &OrderFacts<'_>) {
        self.orders += 1;
        self.lines += facts.skus.len() as u64;
        self.net_minor += facts.net_minor;
        if let Some(log) = &mut self.log {
            log.push_with_skus(facts.customer, PurchaseTime::from(facts.placed_at), facts.net_minor, facts.skus)
                .expect("a valid record");
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: read_facts FILE [--log]")?;
    let log = std::env::args().nth(2).is_some_and(|a| a == "--log");
    let started = Instant::now();
    let reader = FactsReader::open(&path, &ReadOptions::default())?.ok_or("not a file for the fast reader")?;
    let read = reader
        .read(|| Totals { log: log.then(TransactionLogBuilder::default), ..Totals::default() })?
        .ok_or("lines are not records: read it with an OrderReader")?;
    let seconds = started.elapsed().as_secs_f64();
    let lines: u64 = read.sinks.iter().map(|t| t.lines).sum();
    let net: i64 = read.sinks.iter().map(|t| t.net_minor).sum();
    println!(
        "{path}: {} rows, {} orders ({lines} lines, net {net}), {} rejected; {} parts, {} read in full; {seconds:.2} s \
         ({:.0} rows/s)",
        read.summary.rows,
        read.summary.orders,
        read.summary.rejected,
        read.parts,
        read.parts_read_in_full,
        read.summary.rows as f64 / seconds
    );
    Ok(())
}
