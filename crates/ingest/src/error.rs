//! The errors that stop a whole file from being read (as opposed to [`crate::Rejected`] rows).

use std::path::PathBuf;

/// Why a file cannot be read at all: it cannot be opened, its format is not recognised, a column a format
/// needs is missing, a column mapping is malformed, or reading failed part-way (a truncated `.gz`, a disk error).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("cannot read the input: {0}")]
    Io(#[from] std::io::Error),
    #[error("{path} ends in .gz but is not gzip-compressed")]
    NotGzip { path: PathBuf },
    #[error(
        "cannot recognise the format of the file from its header {header:?}: name it with --format or a column mapping"
    )]
    UnknownFormat { header: String },
    #[error("the file is empty")]
    Empty,
    #[error("{format} file has no column {column}")]
    MissingColumn { format: &'static str, column: String },
    #[error("column mapping: {0}")]
    BadMapping(String),
    #[error("unknown format {0:?}: expected auto, generic, cdnow, shopify, woocommerce, stripe or a column mapping")]
    UnknownFormatName(String),
    #[error("line {line_number}: cannot read the rest of the file: {message}")]
    ReadFailed { line_number: u64, message: String },
}
