//! `spalloc-server`: a SpiNNaker allocation server that speaks the protocol of
//! the reference Python `spalloc_server` (1!7.0.0), minus its bugs, with a
//! built-in simulated machine so it runs anywhere.
//!
//! Layout (outside in):
//!
//! * [`server`]: the tokio TCP front end ([`RunningServer`] for embedding);
//! * [`http`]: the HTTP(S) listener of the v2 REST API (log-in in [`http::auth`]);
//! * [`bmp`]: BMP back ends that carry out power and link requests;
//! * [`config`]: the TOML configuration and its validation;
//! * [`service`]: the sans-I/O service, fed protocol lines and time;
//! * [`cmd`]: the protocol's commands, one module per group;
//! * [`metrics`]: the Prometheus `/metrics` endpoint;
//! * [`rest`]: the v2 REST API's operations, sans-I/O (served by [`http`]);
//! * [`core`]: machines, geometry, allocation, queues and the controller;
//! * [`store`]: the durable state file (SQLite tables fed by a change journal);
//! * [`accounts`]: users, sessions and API tokens (in the state file);
//! * [`http`]: the HTTP front end (log-in in [`http::auth`]);
//! * [`web`]: the dashboard pages (served by [`http`]);
//! * [`clock`]: the only place the wall clock is read.
//!
//! ```no_run
//! use spalloc_server::{RunningServer, ServerConfig};
//! let mut config = ServerConfig::demo();
//! config.port = 0; // any free port
//! let server = RunningServer::start(config)?;
//! println!("serving on {}", server.local_addr());
//! server.shutdown();
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod accounts;
pub mod bmp;
pub mod board_cli;
pub mod board_sim;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod core;
pub mod http;
pub mod machine_cli;
pub mod metrics;
pub mod proxy;
pub mod rest;
pub mod server;
pub mod service;
pub mod store;
pub mod user_cli;
pub mod web;

pub use config::{ConfigError, ServerConfig};
pub use server::RunningServer;
pub use service::Service;
