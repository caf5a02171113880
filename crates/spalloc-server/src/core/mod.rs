//! The sans-I/O core: machine geometry, allocation, the job queue and the
//! controller. Nothing in here touches sockets, threads or the wall clock;
//! time is passed in as Unix seconds.
//!
//! * [`coordinates`], [`area_to_rect`], [`pack_tree`], [`candidate_filter`],
//!   [`allocator`]: geometry and board allocation, exactly as the reference;
//! * [`machine`]: the validated description of a machine;
//! * [`job`], [`job_queue`], [`retired`], [`tombstone`]: jobs and their queues;
//! * [`job_record`], [`allocation_record`]: a job's durable record;
//! * [`cooling`]: freed boards waiting out `seconds_before_free`, as records;
//! * [`issue_report`]: users' reports of broken boards;
//! * [`usage`], [`usage_history`]: board-seconds per job, user and group, and
//!   quotas; the compact history of finished jobs' usage;
//! * [`scheduler`]: a machine's queue policy (FIFO or backfill);
//! * [`board_service`]: boards taken out of service and returned;
//! * [`queue_status`]: where a queued job stands and why it waits;
//! * [`bmp_request`]: the power and link work the core hands to BMP back ends;
//! * [`watch`]: who is notified of which changes;
//! * [`where_is`]: locating boards and chips;
//! * [`controller`]: the life cycle of every job, tying it all together;
//! * [`reconfigure`]: applying a reloaded configuration to a running controller.

pub mod allocation_record;
pub mod allocator;
pub mod area_to_rect;
pub mod bmp_request;
pub mod board_service;
pub mod candidate_filter;
pub mod controller;
pub mod cooling;
pub mod coordinates;
pub mod issue_report;
pub mod job;
pub mod job_history;
pub mod job_queue;
pub mod job_record;
pub mod job_table;
pub mod machine;
pub mod pack_tree;
pub mod python_set;
pub mod queue_status;
pub mod reconfigure;
pub mod records;
pub mod retired;
pub mod scheduler;
pub mod tombstone;
pub mod usage;
pub mod usage_history;
pub mod watch;
pub mod where_is;
