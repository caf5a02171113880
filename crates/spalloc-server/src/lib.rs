//! A spalloc_server-compatible allocation server (work in progress).

pub mod core;
