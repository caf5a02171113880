//! The v2 (REST) protocol of allocserv, the Java spalloc server, and of
//! this project's server: a blocking client with explicit parameters.
//!
//! SpiNNMan's `SpallocClient` takes its request from sPyNNaker's config
//! file, polls every 5 s and loses its job when the server restarts; this
//! client takes every create form as a parameter ([`CreateJob`]),
//! long-polls (`wait=true`), and keeps jobs alive through server restarts
//! and expired sessions (it logs in again on 401).
//!
//! ```
//! # let mut server_config = spalloc_server::ServerConfig::from_toml_str(
//! #     "ip = \"127.0.0.1\"\nport = 0\n[http]\nport = 0\n[[machine]]\nname = \"m\"\n\
//! #      width = 1\nheight = 1\nbase_ip = \"127.0.1.0\"\npower_delay = 0.02\n")?;
//! # let server = spalloc_server::RunningServer::start(server_config)?;
//! # server.accounts().add_user(&spalloc_server::accounts::NewUser {
//! #     name: "ann".into(), role: spalloc_server::accounts::Role::User,
//! #     password: Some("secret".into()), groups: vec!["g".into()],
//! # }, spalloc_server::clock::now() as i64)?;
//! # let url = format!("http://{}/spalloc/", server.http_addr().unwrap());
//! use spalloc::v2::{Client, CreateJob, Credentials};
//! use std::time::Duration;
//!
//! let client = Client::builder(url)                      // https://host/spalloc/
//!     .credentials(Credentials::password("ann", "secret")) // or Credentials::Token(..)
//!     .build()?;
//! let job = client.create_job(&CreateJob::boards(3))?;
//! job.wait_until_ready(Some(Duration::from_secs(60)))?;
//! println!("{:?} on {:?}", job.hostname()?, job.machine_name()?);
//! job.destroy(Some("finished"))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Layout: [`url`] (addresses), [`credentials`], `tls`, [`session`] (log-in,
//! CSRF, renewal), [`client`], [`create`] (requests), [`job`], `keepalive`,
//! [`shapes`] (answers), [`tokens`] (personal API tokens), [`proxy`] (datagrams
//! to a job's boards through the server's websocket proxy).

pub mod client;
pub mod create;
pub mod credentials;
pub mod job;
mod keepalive;
pub mod proxy;
pub mod session;
pub mod shapes;
mod tls;
pub mod tokens;
pub mod url;

pub use client::{BoardLookup, Client, ClientBuilder};
pub use create::{BoardSelector, CreateJob, Placement, Shape};
pub use credentials::Credentials;
pub use job::{Job, ReportedBoard};
pub use session::ServiceDescription;
pub use shapes::{BoardCoords, JobStatus, MachineInfo, QuotaWarning, SubMachine};
