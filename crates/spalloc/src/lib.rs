//! Client library for spalloc, the SpiNNaker machine allocation service.
//!
//! A Rust re-implementation of the Python `spalloc` client (`spalloc_client`
//! 1!7.x). It speaks the same newline-delimited JSON protocol, byte for byte,
//! reads the same configuration files, and offers the same two levels of
//! interface:
//!
//! * [`Job`], the high-level interface: request boards, keep them alive in
//!   the background, wait until they are ready, find their addresses, free
//!   them. Dropping a `Job` destroys it.
//! * [`ProtocolClient`], the low-level one: every server command as a
//!   blocking method, plus notifications.
//!
//! # Quick start
//!
//! Write a configuration file naming your server and yourself (see
//! [`config::search_path`] for where; the `spalloc` tools can print it):
//!
//! ```ini
//! [spalloc]
//! hostname = my_server
//! owner = jdh@cs.man.ac.uk
//! ```
//!
//! then request a three-board machine, use it, and free it (the manual's
//! `with Job(3) as j:`). The hidden lines of these examples start a local
//! server (the `spalloc-server` crate) so that they run as tests:
//!
//! ```
//! # let mut server_config = spalloc_server::ServerConfig::demo();
//! # server_config.port = 0;
//! # let server = spalloc_server::RunningServer::start(server_config)?;
//! # let port = server.local_addr().port();
//! use spalloc::Job;
//! # fn my_boot(_: &str, _: u32, _: u32) {}
//! # fn my_application(_: &str) {}
//!
//! Job::builder()
//!     .boards(3)
//! #   .config_files(Vec::<std::path::PathBuf>::new()).hostname("127.0.0.1").port(port).owner("me")
//!     .run(|j| -> spalloc::Result<()> {
//!         let hostname = j.hostname()?.unwrap_or_default();
//!         my_boot(&hostname, j.width()?.unwrap_or(0), j.height()?.unwrap_or(0));
//!         my_application(&hostname);
//!         Ok(())
//!     })??;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! For finer-grained control, the same is available step by step:
//!
//! ```
//! # let mut server_config = spalloc_server::ServerConfig::demo();
//! # server_config.port = 0;
//! # let server = spalloc_server::RunningServer::start(server_config)?;
//! # let port = server.local_addr().port();
//! use spalloc::{Job, JobState};
//! use std::time::Duration;
//!
//! let j = Job::builder()
//!     .boards(6)
//! #   .config_files(Vec::<std::path::PathBuf>::new()).hostname("127.0.0.1").port(port).owner("me")
//!     .create()?;
//! println!("job {} created", j.id()); // log it: spalloc-job and spalloc-where-is use it
//! j.wait_until_ready(Some(Duration::from_secs(60)))?;
//! assert_eq!(j.state()?, JobState::Ready);
//! println!("{:?}: {:?} x {:?} chips", j.hostname()?, j.width()?, j.height()?);
//! println!("boards {:?} of {:?}", j.boards()?, j.machine_name()?);
//! j.destroy(None)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The low-level client, as in the manual's `ProtocolClient` example:
//!
//! ```
//! # let mut server_config = spalloc_server::ServerConfig::demo();
//! # server_config.port = 0;
//! # let server = spalloc_server::RunningServer::start(server_config)?;
//! # let port = server.local_addr().port();
//! use spalloc::{version, Allocation, JobOptions, ProtocolClient};
//! use std::time::Duration;
//!
//! let c = ProtocolClient::connect_to("127.0.0.1", port, Some(Duration::from_secs(10)))?;
//! // Call commands by name...
//! println!("{}", c.call("version", vec![], Default::default())?);
//! // ...or as methods, here with the version check the tools do.
//! let v = c.version()?;
//! assert!(version::is_compatible(&v));
//! // Wait for an event.
//! c.notify_job(None)?;
//! let id = c.create_job(&Allocation::OneBoard, &JobOptions::new("me"))?;
//! println!("{:?}", c.wait_for_notification(Some(Duration::from_secs(10)))?); // JobsChanged([1])
//! c.destroy_job(id, Some("done"))?;
//! c.close();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every request form of the reference is available:
//!
//! ```no_run
//! use spalloc::Job;
//! # fn main() -> spalloc::Result<()> {
//! let any_board = Job::builder().create()?;                          // Job()
//! let four = Job::builder().boards(4).create()?;                     // Job(4)
//! let squarish = Job::builder().boards(7).min_ratio(0.5).create()?;  // Job(7, min_ratio=0.5)
//! let rect = Job::builder().triads(4, 5).create()?;                  // Job(4, 5)
//! let torus = Job::builder().triads(4, 2).require_torus(true).create()?;
//! let board = Job::builder().board_at(3, 2, 1).machine("m").create()?; // Job(3, 2, 1, machine="m")
//! let resumed = Job::resume(123)?;                                   // Job(resume_job_id=123)
//! # Ok(()) }
//! ```
//!
//! The boards are powered on but not booted: that is up to you.
//!
//! # Differences from the reference client
//!
//! They are fixes of its known bugs: a dropped connection while waiting,
//! keeping alive, querying or destroying is re-made after `reconnect_delay`
//! and the operation carries on; a `None` timeout means no timeout
//! everywhere; [`Job::hostname`] is `None`, not an exception, before
//! allocation; all four `where_is` forms work; the version check also
//! accepts the Python server `1!7.0.0`; the wait re-polls the job state when
//! no notification comes within `keepalive / 2`. The keepalive runs in a
//! thread (with its own connection) rather than a helper process.
//!
//! # Layout
//!
//! One module per concept:
//!
//! * [`config`]: the config files, their search path and parsing rules;
//! * [`protocol_client`]: [`ProtocolClient`], one connection, typed commands,
//!   notifications;
//! * [`request`]: what a job asks for ([`Allocation`], [`JobOptions`]) and
//!   `where_is` queries ([`WhereIs`]), in the reference's wire form;
//! * [`job`]: [`Job`] and [`JobBuilder`];
//! * `keepalive` (private): the thread that keeps a job alive;
//! * [`v2`]: the v2 (REST) protocol's client, [`v2::Client`] and [`v2::Job`];
//! * [`any_job`]: [`AnyJob`], a job over either protocol, chosen by address;
//! * [`version`]: which server versions are accepted;
//! * [`error`]: the crate's [`Error`].
//!
//! The wire types themselves ([`JobState`], the reply records) come from the
//! `spalloc-protocol` crate and are re-exported here.

#![warn(missing_docs)]

pub mod any_job;
pub mod config;
pub mod error;
pub mod job;
mod keepalive;
pub mod protocol_client;
pub mod request;
pub mod usage;
pub mod v2;
pub mod version;

#[cfg(test)]
mod test_support;

pub use any_job::{AnyJob, JobHandle};
pub use config::{Config, ConfigError};
pub use error::{Error, Result};
pub use job::{Job, JobBuilder};
pub use protocol_client::ProtocolClient;
pub use request::{Allocation, JobOptions, WhereIs, WireNumber};
pub use spalloc_protocol::{
    BoardCoord, ChipCoord, Connection, JobListing, JobMachineInfo, JobState, JobStateRecord,
    MachineListing, Notification, PhysicalCoord, WhereIsRecord, DEFAULT_PORT,
};
