//! A consistent view of a state file, for tools that read it while a
//! server may be using it (`spalloc-server board reports`, say).
//!
//! The tables alone are not enough: the latest changes may still be only
//! in the change journal ([`super::journal`]), which the server's applier
//! empties into the tables every few milliseconds. So the view is the
//! tables as of one read transaction plus the journal's entries beyond the
//! last one those tables hold. The journal is read after the tables; if
//! the applier wrote a batch meanwhile (the tables' journal mark moved),
//! entries the view needs may have left the journal, so it reads again.

use super::journal::Journal;
use crate::core::records::Records;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// How many times the view is read again while a server keeps writing.
const ATTEMPTS: usize = 100;

/// What a state file holds now, tables and journal together (`None` if it
/// holds no records yet), and a description of each row or journal file
/// that could not be read. Opens the file read-only, without its lock.
pub fn read(path: &Path) -> Result<(Option<Records>, Vec<String>), String> {
    let describe = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let mut conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| describe(&e))?;
    for _ in 0..ATTEMPTS {
        let tx = conn.transaction().map_err(|e| describe(&e))?;
        let (records, mut bad) = super::read_records(&tx).map_err(|e| describe(&e))?;
        let applied = super::journal_applied(&tx).map_err(|e| describe(&e))?;
        drop(tx);
        let journal = Journal::read_only(path).map_err(|e| describe(&e))?;
        let moved = super::journal_applied(&conn).map_err(|e| describe(&e))? != applied;
        if moved {
            continue;
        }
        for (file, what) in &journal.damaged {
            bad.push(format!("{}: {what}", file.display()));
        }
        let fresh = journal.entries.iter().filter(|e| e.seq > applied);
        return Ok((super::journal::apply_over(records, fresh), bad));
    }
    Err(format!(
        "{}: changing too fast to read a consistent view; try again",
        path.display()
    ))
}
