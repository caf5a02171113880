//! `spalloc-job`: show, watch, power, list the IPs of, or destroy one job.

pub mod info;
