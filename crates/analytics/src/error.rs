//! Typed errors of the analytics crate. Every failure a caller can act on has its own variant; no
//! function returns a silent NaN or a negative lifetime value, it returns one of these instead.

use thiserror::Error;

/// Everything that can go wrong in the analytics crate.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum AnalyticsError {
    /// A purchase amount was negative; refunds must be netted into their purchase before analysis.
    #[error("record {record}: amount {amount_minor} is negative; net refunds into their purchase first")]
    NegativeAmount { record: usize, amount_minor: i64 },
    /// A date lies outside the range the log can represent.
    #[error("record {record}: date out of the supported range")]
    DateOutOfRange { record: usize },
    /// Too many distinct customers for a `u32` index.
    #[error("more than {max} distinct customers")]
    TooManyCustomers { max: u64 },
    /// The log holds no transaction up to the requested date.
    #[error("no transactions on or before {0}")]
    NoTransactions(String),
    /// Two dates were given in the wrong order (for example a calibration end after the observation end).
    #[error("{what}: {earlier} must not be after {later}")]
    DateOrder { what: &'static str, earlier: String, later: String },
    /// The data cannot identify the model (for example, nobody made a repeat purchase).
    #[error("{model}: data cannot identify the model: {reason}")]
    Unidentifiable { model: &'static str, reason: String },
    /// An input value was invalid (negative frequency, recency beyond age, non-finite number, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A model parameter was outside its domain.
    #[error("{model}: invalid parameter {name} = {value}")]
    InvalidParameter { model: &'static str, name: &'static str, value: f64 },
    /// The optimiser did not converge.
    #[error("{model}: fit did not converge after {iterations} iterations: {reason}")]
    NotConverged { model: &'static str, iterations: usize, reason: String },
    /// A numerical evaluation produced a non-finite value.
    #[error("{what}: numerical failure ({detail})")]
    Numerical { what: &'static str, detail: String },
    /// The Gamma-Gamma spend model has q <= 1, so the expected spend (and any CLV from it) is undefined.
    #[error("gamma-gamma: q = {q} <= 1, the expected average spend is infinite; CLV is not defined")]
    SpendModelUndefined { q: f64 },
}

/// Shorthand result type of this crate.
pub type Result<T> = std::result::Result<T, AnalyticsError>;
