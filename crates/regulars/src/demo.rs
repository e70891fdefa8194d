//! `regulars demo` and `serve --demo`: a generated shop, written into the database or as generic CSV.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{NaiveDate, Utc};
use clap::Args;
use regulars_demo::DemoConfig;
use regulars_store::{ImportSummary, Store};

use crate::DatabaseArg;

#[derive(Args)]
pub struct DemoArgs {
    /// The same seed always gives the same shop
    #[arg(long, env = "REGULARS_DEMO_SEED", default_value_t = 1)]
    seed: u64,
    /// How many customers
    #[arg(long, env = "REGULARS_DEMO_CUSTOMERS", default_value_t = DEFAULT_CUSTOMERS)]
    customers: u64,
    /// The last day of the history (YYYY-MM-DD); today by default
    #[arg(long)]
    end: Option<NaiveDate>,
    /// Write generic CSV to this file ("-" for standard output) instead of the database
    #[arg(long)]
    csv: Option<PathBuf>,
    #[command(flatten)]
    db: DatabaseArg,
}

pub const DEFAULT_CUSTOMERS: u64 = 2_000;

pub async fn run(args: DemoArgs) -> Result<()> {
    let config = DemoConfig::new(args.seed, args.customers, args.end.unwrap_or_else(|| Utc::now().date_naive()));
    let started = Instant::now();
    match &args.csv {
        Some(path) => {
            let summary = if path.as_os_str() == "-" {
                regulars_demo::write_csv(config, std::io::stdout().lock())?
            } else {
                let file = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
                regulars_demo::write_csv(config, std::io::BufWriter::with_capacity(1 << 20, file))?
            };
            std::io::stdout().flush()?;
            eprintln!(
                "wrote {} customers, {} orders, {} lines in {:.1} s",
                summary.customers,
                summary.orders,
                summary.lines,
                started.elapsed().as_secs_f64()
            );
        }
        None => {
            let store = crate::open(&args.db).await?;
            let written = fill(&store, config).await?;
            store.close().await;
            println!(
                "demo shop in {}: {} customers, {} orders ({} already there), {} refunds in {:.1} s",
                args.db.database,
                written.customers_created,
                written.orders_created,
                written.orders_existing,
                written.refunds_created,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

/// Records the demo shop in `store`: its catalogue, then its orders in batches.
pub async fn fill(store: &Store, config: DemoConfig) -> Result<ImportSummary> {
    let orders = regulars_demo::orders(config)?;
    for product in orders.products() {
        store.upsert_product(product.clone(), None).await?;
    }
    let mut written = ImportSummary::default();
    let mut batch = Vec::with_capacity(2000);
    for order in orders {
        batch.push(order);
        if batch.len() == 2000 {
            written += store.import_orders(std::mem::take(&mut batch), Utc::now()).await?;
        }
    }
    if !batch.is_empty() {
        written += store.import_orders(batch, Utc::now()).await?;
    }
    store.sync().await?;
    Ok(written)
}
