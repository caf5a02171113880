//! `spalloc-where-is`: find a board or chip by any of its coordinates.

pub mod view;
