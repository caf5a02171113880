//! `where_is`: locating a board or chip in every coordinate system at once
//! (spalloc-server.md §5.4).

use crate::core::coordinates::{board_chip as local_chip, board_to_chip, chip_to_board, Board};
use crate::core::job::Job;
use crate::core::machine::{Machine, Physical};
use spalloc_protocol::WhereIsRecord;
use std::collections::BTreeMap;

pub use spalloc_protocol::WhereIsQuery;

/// Answers a query; `None` when the machine, board or job does not exist or
/// the chip is not on the job's boards.
pub fn locate<'m>(
    query: &WhereIsQuery,
    machine_by_name: impl Fn(&str) -> Option<&'m Machine>,
    jobs: &BTreeMap<u64, Job>,
) -> Option<WhereIsRecord> {
    let (machine, cx, cy) = match query {
        WhereIsQuery::Board { machine, x, y, z } => {
            let m = machine_by_name(machine)?;
            let (cx, cy) = board_to_chip(*x, *y, *z);
            (m, cx, cy)
        }
        WhereIsQuery::Physical {
            machine,
            cabinet,
            frame,
            board,
        } => {
            let m = machine_by_name(machine)?;
            let p = Physical {
                cabinet: u32::try_from(*cabinet).ok()?,
                frame: u32::try_from(*frame).ok()?,
                board: u32::try_from(*board).ok()?,
            };
            let b = m.board_at(p)?;
            let (cx, cy) = board_to_chip(b.x.into(), b.y.into(), b.z.into());
            (m, cx, cy)
        }
        WhereIsQuery::Chip { machine, x, y } => (machine_by_name(machine)?, *x, *y),
        WhereIsQuery::JobChip { job_id, x, y } => {
            let job = jobs.get(job_id)?;
            let alloc = job.allocation.as_ref()?;
            let m = machine_by_name(&alloc.machine)?;
            let origin = alloc.min_corner()?;
            let (ox, oy) = board_to_chip(origin.x.into(), origin.y.into(), origin.z.into());
            (m, x.saturating_add(ox), y.saturating_add(oy))
        }
    };
    let (wc, hc) = (machine.width * 12, machine.height * 12);
    let cx = u32::try_from(cx.rem_euclid(i64::from(wc))).ok()?;
    let cy = u32::try_from(cy.rem_euclid(i64::from(hc))).ok()?;
    let board_chip = local_chip(cx.into(), cy.into());
    let logical = chip_to_board(cx.into(), cy.into(), wc, hc)?;
    let physical = machine.board_locations.get(&logical)?;
    let owner = jobs.values().find(|j| {
        j.allocation
            .as_ref()
            .is_some_and(|a| a.machine == machine.name && a.boards.contains(&logical))
    });
    if let WhereIsQuery::JobChip { job_id, .. } = query {
        if owner.map(|j| j.id) != Some(*job_id) {
            return None;
        }
    }
    let job_chip = owner.and_then(|j| {
        let a = j.allocation.as_ref()?;
        let o = a.min_corner()?;
        let rel = Board {
            x: logical.x.checked_sub(o.x)?,
            y: logical.y.checked_sub(o.y)?,
            z: logical.z.checked_sub(o.z)?,
        };
        let (jx, jy) = board_to_chip(rel.x.into(), rel.y.into(), rel.z.into());
        let wrap = |v: i64, plus: u32, size: u32| {
            u32::try_from((v + i64::from(plus)).rem_euclid(i64::from(size.max(1)))).ok()
        };
        Some([
            wrap(jx, board_chip.0, a.width)?,
            wrap(jy, board_chip.1, a.height)?,
        ])
    });
    Some(WhereIsRecord {
        machine: machine.name.clone(),
        logical: [logical.x, logical.y, logical.z],
        physical: [physical.cabinet, physical.frame, physical.board],
        chip: [cx, cy],
        board_chip: [board_chip.0, board_chip.1],
        job_id: owner.map(|j| j.id),
        job_chip,
    })
}
