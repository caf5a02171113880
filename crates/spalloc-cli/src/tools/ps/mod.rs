//! `spalloc-ps`: list the live jobs.

pub mod table;
