//! regulars-ingest
