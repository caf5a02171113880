//! A scheduling simulator for the spalloc server.
//!
//! It replays a workload (a seeded mix of job sizes and durations, or a
//! trace file) through the server's real sans-I/O
//! [`Controller`](spalloc_server::core::controller::Controller) with
//! simulated time: no sleeps, no sockets, every BMP request completed at
//! once. Each job is created when it is submitted, destroyed when its
//! duration has passed since it got boards, and the controller decides
//! everything in between exactly as the server would. Running the same
//! workload under each [`Scheduler`](spalloc_server::core::scheduler::Scheduler)
//! compares the policies: utilisation, waits per job size, and how long the
//! job at the head of the queue waits there.
//!
//! * [`workload`]: the jobs to replay, generated or read from a trace;
//! * [`simulate`]: one run of a workload on one machine under one policy;
//! * [`report`]: the figures of a run and their Markdown table.

pub mod report;
pub mod simulate;
pub mod workload;
