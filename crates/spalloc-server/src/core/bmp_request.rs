//! What the core asks the BMP back ends to do.
//!
//! The core never talks to hardware: it emits [`BmpRequest`]s, and the shell
//! hands each to the worker of that BMP, which reports back with
//! `Controller::bmp_request_done`. One request is one of the reference's
//! `AtomicRequests`: power on, then link settings, then power off, for the
//! boards of one job on one BMP.

use spalloc_protocol::Link;

/// Power and link commands for the boards of one job behind one BMP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BmpRequest {
    /// Identifies the request in the completion report.
    pub id: u64,
    /// The job it is for.
    pub job_id: u64,
    /// The machine.
    pub machine: String,
    /// The BMP's (cabinet, frame).
    pub bmp: (u32, u32),
    /// The BMP's hostname.
    pub bmp_ip: String,
    /// Power the boards on (`true`) or off (`false`).
    pub power: bool,
    /// Board slots within the frame.
    pub boards: Vec<u32>,
    /// Link settings to apply after powering on: (slot, link, enable).
    pub links: Vec<(u32, Link, bool)>,
}

/// Why a BMP request failed, as a back end reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BmpFailure {
    /// The BMP at this address could not carry the request out (no reply,
    /// an error code): the reference destroys the job.
    Bmp(String),
    /// The BMP answered, but these board slots failed their power-on
    /// checks (their FPGAs never reported the right IDs): those boards go
    /// out of service and the job goes back to the queue at its place.
    PowerOnChecks {
        /// The BMP's address.
        bmp_ip: String,
        /// The slots (within the request's frame) that failed.
        slots: Vec<u32>,
    },
}
