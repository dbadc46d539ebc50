//! DSN.
