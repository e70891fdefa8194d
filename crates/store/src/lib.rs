//! regulars-store
