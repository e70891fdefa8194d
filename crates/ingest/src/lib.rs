//! `regulars-ingest`: readers of transaction exports (CSV, possibly gzip-compressed) that stream
//! [`regulars_core::ImportedOrder`]s, for `regulars import`. No database: the store records what this produces.
//!
//! ```no_run
//! use regulars_ingest::{OrderReader, ReadOptions};
//!
//! let mut reader = OrderReader::open("orders.csv.gz", &ReadOptions::default())?;
//! let progress = reader.progress(); // poll from a progress-bar thread
//! for item in &mut reader {
//!     match item {
//!         Ok(order) => { /* record it */ }
//!         Err(rejected) => eprintln!("{rejected}"),
//!     }
//! }
//! let summary = reader.finish()?; // the error that stopped reading early, if any
//! # Ok::<(), regulars_ingest::IngestError>(())
//! ```
//!
//! Formats: [`generic`] (what `regulars demo --csv` writes), [`Format::Cdnow`], [`Format::Shopify`],
//! [`Format::WooCommerce`], [`Format::Stripe`], and [column mappings](mod@format) for anything else; see each
//! reader's module documentation for how its rows become orders. Dates: [`dates`]. Delimiters are sniffed
//! from the header ([`detect`]).
//!
//! Must never: read a whole file into memory, read the clock, or write anywhere.

pub mod dates;
pub mod detect;
pub mod error;
pub mod facts;
pub mod format;
mod formats;
pub mod generic;
pub mod reader;
mod source;

pub use dates::{SlashDateOrder, TimestampParser};
pub use detect::Delimiter;
pub use error::IngestError;
pub use facts::{FactsRead, FactsReader, FactsSink, OrderFacts, PartRoom, facts_of};
pub use format::{ColumnMapping, Format};
pub use generic::{GENERIC_HEADER, GenericCsvWriter};
pub use reader::{Detected, OrderReader, ReadOptions, ReadSummary, Rejected};
pub use source::Progress;
