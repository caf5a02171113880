//! Wire types and framing of the spalloc protocol (version 1, "spalloc_server" compatible).
//!
//! The spalloc protocol is newline-delimited JSON over TCP (default port
//! [`DEFAULT_PORT`]). A client sends [`Request`]s; the server answers each with
//! a [`ServerMessage::Return`] or [`ServerMessage::Exception`], in order, and
//! may interleave [`Notification`]s at any time.
//!
//! This crate has no I/O runtime: it is shared by the blocking client library
//! (`spalloc`), the command-line tools and the tokio-based server.
//!
//! Layout:
//!
//! * [`frame`]: splitting a byte stream into lines, with a size limit;
//! * [`python_json`]: JSON text in exactly the style Python's `json.dumps` writes;
//! * [`message`]: requests, replies and notifications;
//! * [`request_line`]: a request line parsed straight into its parts;
//! * [`job_state`]: the job life-cycle states;
//! * [`link`]: the six links between boards;
//! * [`records`]: the typed shapes of command return values;
//! * [`where_is`]: the four forms of a `where_is` query.

pub mod frame;
pub mod job_state;
pub mod link;
pub mod message;
pub mod proxy_frame;
pub mod python_json;
pub mod records;
pub mod request_line;
pub mod where_is;

pub use frame::{FrameError, LineBuffer, DEFAULT_MAX_LINE_LENGTH, MAX_REPLY_LINE_LENGTH};
pub use job_state::JobState;
pub use link::Link;
pub use message::{Notification, Request, RequestError, ServerMessage};
pub use records::{
    BoardCoord, ChipCoord, Connection, JobListing, JobMachineInfo, JobStateRecord, MachineListing,
    PhysicalCoord, WhereIsRecord,
};
pub use where_is::WhereIsQuery;

/// The TCP port spalloc servers listen on unless told otherwise.
pub const DEFAULT_PORT: u16 = 22244;
