//! `GET` and `POST /jobs/{id}/memory`: reading and writing the memory of a
//! chip of the job's boards through the server, as SpiNNMan's
//! `SpallocTransceiver` does (`read_data`, `write_data`; contract §3.12).
//!
//! Split as long-polls are: [`memory_access`] decides everything under the
//! service lock (who may, which board, which chip, the address and size)
//! and gives the shell a [`MemoryAccess`]; the shell speaks SCP to the
//! board's Ethernet chip without the lock and answers with [`read_reply`],
//! [`write_reply`] or its failure. The SCP destination is the job-relative
//! chip (a job's boards are booted as one machine of their own, so that is
//! how its chips know themselves), sent to the Ethernet chip of the board
//! holding it.

use super::query::Query;
use super::{ApiRequest, Body, Failure, Reply};
use crate::service::Service;
use spalloc_protocol::{JobState, WhereIsQuery};

/// The most bytes one read may ask for (SpiNNMan reads regions of a few
/// kilobytes; this bounds the server's buffer and the board's work).
pub const MAX_READ_BYTES: u32 = 1 << 20;

/// What to do to a chip's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryOp {
    /// Read this many bytes.
    Read(u32),
    /// Write these bytes.
    Write(Vec<u8>),
}

/// One memory access, decided: where to send it and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryAccess {
    /// The IP address of the Ethernet chip of the board holding the chip.
    pub board_ip: String,
    /// The chip, job-relative (the SCP destination).
    pub chip: (u32, u32),
    /// The first address.
    pub address: u32,
    /// Read or write.
    pub op: MemoryOp,
}

/// Checks a memory request for job `id` and says what the shell must do:
/// 404 for a job the caller may not see, 410 for a destroyed one, 400 for
/// one whose boards are not ready, a chip outside it, or a bad address or
/// size.
pub fn memory_access(
    service: &Service,
    request: &ApiRequest,
    id: u64,
    read: bool,
    q: &Query,
) -> Result<MemoryAccess, Failure> {
    let x = q.int("x", 0, 0, i64::from(u16::MAX))?;
    let y = q.int("y", 0, 0, i64::from(u16::MAX))?;
    let address = match q.get("address") {
        None => return Err(Failure::bad("address is required")),
        Some(_) => q.int("address", 0, 0, i64::from(u32::MAX))?,
    };
    let op = if read {
        let size = match q.get("size") {
            None => return Err(Failure::bad("size is required")),
            Some(_) => q.int("size", 0, 1, i64::from(MAX_READ_BYTES))?,
        };
        MemoryOp::Read(size as u32)
    } else {
        MemoryOp::Write(request.body.to_vec())
    };
    let length = match &op {
        MemoryOp::Read(n) => u64::from(*n),
        MemoryOp::Write(data) => data.len() as u64,
    };
    if address as u64 + length > 1 << 32 {
        return Err(Failure::bad(
            "the access runs past the end of the address space",
        ));
    }
    let job = super::jobs::live(service, request.user, id)?;
    if job.state != JobState::Ready {
        return Err(Failure::bad(
            "the job's boards are not ready: wait until the job is READY",
        ));
    }
    let outside = || Failure::bad(format!("chip ({x}, {y}) is not in the job's allocation"));
    let record = service
        .controller
        .where_is(&WhereIsQuery::JobChip { job_id: id, x, y })
        .ok_or_else(outside)?;
    let [bx, by, bz] = record.logical;
    let board_ip = service
        .controller
        .machine(&record.machine)
        .and_then(|m| {
            m.spinnaker_ips
                .get(&crate::core::coordinates::Board::new(bx, by, bz))
                .cloned()
        })
        .ok_or_else(outside)?;
    Ok(MemoryAccess {
        board_ip,
        chip: (x as u32, y as u32),
        address: address as u32,
        op,
    })
}

/// 200 with the bytes read, `application/octet-stream`.
pub fn read_reply(data: Vec<u8>) -> Reply {
    Reply::with(200, Body::Bytes(data))
}

/// 202 for a write done, as allocserv answers.
pub fn write_reply() -> Reply {
    Reply::empty(202)
}
