//! regulars-server
