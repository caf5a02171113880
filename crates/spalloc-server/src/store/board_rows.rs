//! The rows of the boards out of service and of the issue reports
//! ([`BoardRecords`]): written whole whenever either changes (a board
//! goes out or back, a report arrives: rare events, and at most
//! [`MAX_ISSUE_REPORTS`](crate::core::issue_report::MAX_ISSUE_REPORTS)
//! reports), so the rows are always exactly the controller's records.

use crate::core::board_service::{BoardRecords, OutOfService};
use crate::core::coordinates::Board;
use crate::core::issue_report::{IssueReport, KeptReport};
use rusqlite::{params, Connection};

/// Reads the board records; unreadable rows are described in `bad`.
pub fn read(conn: &Connection, bad: &mut Vec<String>) -> rusqlite::Result<BoardRecords> {
    let mut records = BoardRecords::default();
    let mut query = conn.prepare(
        "SELECT machine, x, y, z, since, reason FROM boards_out_of_service
         ORDER BY machine, x, y, z",
    )?;
    let rows = query.query_map([], |r| {
        Ok(OutOfService {
            machine: r.get(0)?,
            board: Board::new(r.get(1)?, r.get(2)?, r.get(3)?),
            since: r.get(4)?,
            reason: r.get(5)?,
        })
    })?;
    for row in rows {
        match row {
            Ok(o) => records.out_of_service.push(o),
            Err(e) => bad.push(format!("a board out of service: {e}")),
        }
    }
    let mut query = conn.prepare(
        "SELECT machine, x, y, z, job_id, reporter, issue, time, closed FROM board_reports
         ORDER BY seq",
    )?;
    let rows = query.query_map([], |r| {
        Ok(KeptReport {
            report: IssueReport {
                machine: r.get(0)?,
                board: Board::new(r.get(1)?, r.get(2)?, r.get(3)?),
                job_id: r.get(4)?,
                reporter: r.get(5)?,
                issue: r.get(6)?,
                time: r.get(7)?,
            },
            closed: r.get(8)?,
        })
    })?;
    for row in rows {
        match row {
            Ok(k) => records.reports.push(k),
            Err(e) => bad.push(format!("a board report: {e}")),
        }
    }
    Ok(records)
}

/// Replaces every board row with `records` (inside the caller's
/// transaction).
pub fn write(tx: &Connection, records: &BoardRecords) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM boards_out_of_service", [])?;
    tx.execute("DELETE FROM board_reports", [])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO boards_out_of_service (machine, x, y, z, since, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for o in &records.out_of_service {
        let b = o.board;
        insert.execute(params![o.machine, b.x, b.y, b.z, o.since, o.reason])?;
    }
    let mut insert = tx.prepare_cached(
        "INSERT INTO board_reports (seq, machine, x, y, z, job_id, reporter, issue, time, closed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for (seq, k) in records.reports.iter().enumerate() {
        let r = &k.report;
        let b = r.board;
        insert.execute(params![
            seq as i64, r.machine, b.x, b.y, b.z, r.job_id, r.reporter, r.issue, r.time, k.closed
        ])?;
    }
    Ok(())
}
