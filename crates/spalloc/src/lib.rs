//! Client library for spalloc, the SpiNNaker machine allocation service.
//!
//! A Rust re-implementation of the Python `spalloc` client (`spalloc_client`
//! 1!7.x), speaking the same newline-delimited JSON protocol, byte for byte.
//!
//! (Job documentation to follow.)

pub mod config;
pub mod error;
pub mod protocol_client;
pub mod request;
pub mod version;

#[cfg(test)]
mod test_support;

pub use config::{Config, ConfigError};
pub use error::{Error, Result};
pub use protocol_client::ProtocolClient;
pub use request::{Allocation, JobOptions, WhereIs, WireNumber};
pub use spalloc_protocol::{
    BoardCoord, ChipCoord, Connection, JobListing, JobMachineInfo, JobState, JobStateRecord,
    MachineListing, Notification, PhysicalCoord, WhereIsRecord, DEFAULT_PORT,
};
