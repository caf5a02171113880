//! The job proxy: allocserv's websocket protocol (reference §4.7), through
//! which a client outside the boards' network reaches its job's boards over
//! UDP. [`frame`] (in `spalloc-protocol`, shared with the local forwarder)
//! is the wire format and [`session`] the rules, both with
//! no I/O; [`socket`] is the shell that moves datagrams between the
//! websocket and UDP sockets.

pub mod access;
pub use spalloc_protocol::proxy_frame as frame;
pub mod route;
pub mod session;
pub mod socket;
