//! `spalloc-machine`: the machines and the jobs on them.

pub mod keys;
pub mod view;
