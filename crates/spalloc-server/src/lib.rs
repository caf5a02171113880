//! `spalloc-server` (being assembled).

pub mod clock;
pub mod config;
pub mod core;
