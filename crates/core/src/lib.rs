//! regulars-core
