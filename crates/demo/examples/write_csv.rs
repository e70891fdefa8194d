//! Writes the demo shop as generic CSV, for benchmarks:
//! `cargo run --release -p regulars-demo --example write_csv -- OUT.csv [CUSTOMERS] [SEED] [END]`.

use std::fs::File;
use std::time::Instant;

use chrono::NaiveDate;
use regulars_demo::{DemoConfig, write_csv};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: write_csv OUT.csv [CUSTOMERS] [SEED] [END YYYY-MM-DD]")?;
    let customers: u64 = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let seed: u64 = args.next().map_or(Ok(42), |a| a.parse())?;
    let end = args.next().map_or(Ok(NaiveDate::from_ymd_opt(2026, 10, 31).expect("a date")), |a| a.parse())?;
    let started = Instant::now();
    let summary = write_csv(DemoConfig::new(seed, customers, end), File::create(&path)?)?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{path}: {} customers, {} orders, {} lines in {seconds:.1} s ({:.0} lines/s)",
        summary.customers,
        summary.orders,
        summary.lines,
        summary.lines as f64 / seconds
    );
    Ok(())
}
