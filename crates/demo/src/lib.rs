//! `regulars-demo`: a deterministic demo shop (a café with a deli counter and a bookshop) for `regulars demo`,
//! `regulars serve --demo` and benchmarks.
//!
//! [`DemoOrders`] streams the shop's [`ImportedOrder`]s (each with its customer and products) customer after
//! customer, so a million customers take bounded memory; [`write_csv`] writes the same orders as the generic
//! CSV that `regulars import` reads back (`regulars_ingest::generic`). The same seed and configuration always
//! give the same shop. [`catalogue`] is the product list; [`shop`] says how customers behave.
//!
//! Must never: read the clock (the history ends at [`DemoConfig::end`]) or touch a database.

pub mod catalogue;
mod people;
pub mod shop;

use std::io::Write;

use regulars_core::ImportedOrder;
use regulars_ingest::GenericCsvWriter;

pub use shop::{DemoConfig, DemoOrders};

/// Why a demo shop could not be generated or written.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("invalid demo configuration: {0}")]
    InvalidConfig(String),
    #[error("purchase process: {0}")]
    Process(#[from] regulars_analytics::AnalyticsError),
    #[error("cannot write the demo CSV: {0}")]
    Io(#[from] std::io::Error),
}

/// What [`write_csv`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CsvSummary {
    pub customers: u64,
    pub orders: u64,
    /// Data rows (order lines), not counting the header.
    pub lines: u64,
}

/// The demo shop's orders, customer after customer.
pub fn orders(config: DemoConfig) -> Result<DemoOrders, DemoError> {
    DemoOrders::new(config)
}

/// Writes the demo shop as generic CSV (header included) into `writer`, which is buffered internally.
pub fn write_csv<W: Write>(config: DemoConfig, writer: W) -> Result<CsvSummary, DemoError> {
    let customers = config.customers;
    let mut csv = GenericCsvWriter::new(writer)?;
    let mut summary = CsvSummary { customers, ..CsvSummary::default() };
    for order in orders(config)? {
        write_one(&mut csv, &order, &mut summary)?;
    }
    csv.into_inner()?.flush()?;
    Ok(summary)
}

fn write_one<W: Write>(
    csv: &mut GenericCsvWriter<W>,
    order: &ImportedOrder,
    summary: &mut CsvSummary,
) -> std::io::Result<()> {
    csv.write_order(order)?;
    summary.orders += 1;
    summary.lines += order.order.lines.len() as u64;
    Ok(())
}
