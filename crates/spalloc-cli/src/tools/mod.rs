//! One module per command-line tool.

pub mod alloc;
pub mod config;
pub mod job;
pub mod login;
pub mod machine;
pub mod ps;
pub mod where_is;
