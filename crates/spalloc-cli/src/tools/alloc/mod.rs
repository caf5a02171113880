//! `spalloc`: allocate boards, wait for them, then print their details or run a command.

pub mod messages;
