//! regulars-analytics
