//! `regulars-synth`: a purchase log with known true parameters, in the CDNOW format
//! (`customer_id date(YYYYMMDD) number_of_cds dollar_value`, one line per purchase, no header), for
//! benchmarks at the size of a real shop: by default 1,000,000 customers buying by a BG/NBD process
//! with Gamma-Gamma spend, about 10,000,000 transactions over two years.
//!
//! The customers come from `regulars_analytics::synth` (deterministic by seed; customer `i` is the same
//! whatever the number of customers). The true parameters are printed on standard error, so that a fit
//! of the file can be compared with them.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{Datelike, NaiveDate};
use clap::Parser;
use rayon::prelude::*;
use regulars_analytics::models::{BgNbdParams, GammaGammaParams};
use regulars_analytics::synth::{PurchaseProcess, SyntheticConfig, generate_customer};

#[derive(Parser)]
#[command(about = "Write a synthetic purchase log with known BG/NBD and Gamma-Gamma parameters (CDNOW format)")]
struct Args {
    /// Where to write the log ("-" for standard output)
    out: PathBuf,
    /// How many customers
    #[arg(long, default_value_t = 1_000_000)]
    customers: usize,
    /// The same seed always gives the same log
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// The first day of the history (first purchases fall in its first quarter)
    #[arg(long, default_value = "2024-11-01")]
    start: NaiveDate,
    /// The last day of the history
    #[arg(long, default_value = "2026-10-31")]
    end: NaiveDate,
}

/// The true parameters, per week and in dollars.
const PURCHASES: BgNbdParams = BgNbdParams { r: 2.0, alpha: 12.5, a: 1.0, b: 15.0 };
const SPEND: GammaGammaParams = GammaGammaParams { p: 6.0, q: 4.0, v: 15.0 };

fn main() -> Result<()> {
    let args = Args::parse();
    let config =
        SyntheticConfig::new(PurchaseProcess::BgNbd(PURCHASES), SPEND, args.customers, args.start, args.end, args.seed);
    let out: Box<dyn Write> = if args.out.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(File::create(&args.out).with_context(|| format!("create {}", args.out.display()))?)
    };
    let mut out = BufWriter::with_capacity(1 << 20, out);
    let mut lines = 0usize;
    // Blocks of customers generated and formatted in parallel, written in order.
    const BLOCK: usize = 1 << 16;
    for first in (0..args.customers).step_by(BLOCK) {
        let last = (first + BLOCK).min(args.customers);
        let texts: Vec<(Vec<u8>, usize)> = (first..last)
            .into_par_iter()
            .map(|i| -> Result<(Vec<u8>, usize)> {
                let customer = generate_customer(&config, i as u64)?;
                let mut text = Vec::with_capacity(32 * customer.purchases.len());
                let mut number = itoa::Buffer::new();
                for purchase in &customer.purchases {
                    let date = purchase.at.date();
                    let cents = purchase.amount_minor;
                    text.extend_from_slice(number.format(i + 1).as_bytes());
                    text.push(b' ');
                    text.extend_from_slice(
                        number.format(date.year() * 10_000 + date.month() as i32 * 100 + date.day() as i32).as_bytes(),
                    );
                    text.push(b' ');
                    // A number of CDs that varies with the value, at least one.
                    text.extend_from_slice(number.format(1 + cents % 3).as_bytes());
                    text.push(b' ');
                    text.extend_from_slice(number.format(cents / 100).as_bytes());
                    text.push(b'.');
                    text.extend_from_slice(format!("{:02}", cents % 100).as_bytes());
                    text.push(b'\n');
                }
                Ok((text, customer.purchases.len()))
            })
            .collect::<Result<_>>()?;
        for (text, n) in texts {
            out.write_all(&text)?;
            lines += n;
        }
    }
    out.flush()?;
    eprintln!(
        "regulars-synth: {} customers, {lines} purchases, {} to {}, seed {}; true BG/NBD (weeks) r={} alpha={} a={} b={}, Gamma-Gamma (dollars) p={} q={} v={}",
        args.customers,
        args.start,
        args.end,
        args.seed,
        PURCHASES.r,
        PURCHASES.alpha,
        PURCHASES.a,
        PURCHASES.b,
        SPEND.p,
        SPEND.q,
        SPEND.v
    );
    Ok(())
}
