//! `spalloc-server board ...`: boards out of service and users' reports of
//! broken boards, from the command line.
//!
//! * `board reports` lists the reports (open ones count toward taking a
//!   board out of service; closed ones are those of boards returned since);
//! * `board out-of-service` lists the boards out of service, with why and
//!   since when; given a board (`MACHINE X Y Z`), takes it out;
//! * `board in-service MACHINE X Y Z` returns a board to service and
//!   closes its reports.
//!
//! They work on the server's state file, found like `user`'s (`--config`
//! or `--state`). Listing works while the server runs (the file is read,
//! never locked). Changing a board needs the file to itself: the running
//! server keeps boards' service state in memory and writes it whole, so a
//! change made beside it would be lost. While it runs the command says so
//! and changes nothing; use the server's admin API instead, or stop it
//! first (the change then holds from its next start).

use crate::core::board_service::{BoardRecords, OutOfService, REASON_ADMIN};
use crate::core::coordinates::Board;
use crate::core::machine::Machine;
use crate::core::records::RecordChanges;
use crate::store::lock::LockError;
use crate::store::{Store, StoreError, Synchronous};
use crate::user_cli::StateFile;
use clap::{Args, Subcommand};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// A board of a machine, as the commands name it.
#[derive(Debug, Clone, Args)]
pub struct BoardArg {
    /// The machine.
    machine: String,
    /// The board's triad X coordinate.
    x: u32,
    /// The board's triad Y coordinate.
    y: u32,
    /// The board within the triad (0, 1 or 2).
    z: u32,
}

impl BoardArg {
    fn board(&self) -> Board {
        Board::new(self.x, self.y, self.z)
    }
}

/// `spalloc-server board ...`.
#[derive(Debug, Subcommand)]
pub enum BoardCommand {
    /// List users' reports of broken boards, oldest first.
    Reports {
        /// Only the open reports (those still counting toward taking a
        /// board out of service).
        #[arg(long)]
        open: bool,
        /// Where the state is kept.
        #[command(flatten)]
        state: StateFile,
    },
    /// List the boards out of service; given a board, take it out
    /// (the server must be stopped).
    OutOfService {
        /// The machine of the board to take out of service (no board: list
        /// the boards out of service).
        #[arg(requires_all = ["x", "y", "z"])]
        machine: Option<String>,
        /// The board's triad X coordinate.
        x: Option<u32>,
        /// The board's triad Y coordinate.
        y: Option<u32>,
        /// The board within the triad (0, 1 or 2).
        z: Option<u32>,
        /// Why, for the listing.
        #[arg(long, requires = "machine")]
        reason: Option<String>,
        /// Where the state is kept.
        #[command(flatten)]
        state: StateFile,
    },
    /// Return a board to service and close its reports (the server must
    /// be stopped).
    InService {
        /// The board.
        #[command(flatten)]
        board: BoardArg,
        /// Where the state is kept.
        #[command(flatten)]
        state: StateFile,
    },
}

/// Runs a `board` subcommand; `Err` is the message to print.
pub fn run_board(command: BoardCommand) -> Result<(), String> {
    match command {
        BoardCommand::Reports { open, state } => {
            let records = read(&state.path()?)?;
            println!(
                "{:<24} {:<12} {:<10} {:<6} {:<20} {:<6} ISSUE",
                "TIME", "MACHINE", "BOARD", "JOB", "REPORTER", "STATUS"
            );
            for k in records.reports.iter().filter(|k| !(open && k.closed)) {
                let r = &k.report;
                println!(
                    "{:<24} {:<12} {:<10} {:<6} {:<20} {:<6} {}",
                    time(r.time),
                    r.machine,
                    board_text(r.board),
                    r.job_id,
                    r.reporter,
                    if k.closed { "closed" } else { "open" },
                    r.issue
                );
            }
        }
        BoardCommand::OutOfService {
            machine: None,
            state,
            ..
        } => {
            let records = read(&state.path()?)?;
            println!("{:<12} {:<10} {:<24} REASON", "MACHINE", "BOARD", "SINCE");
            for o in &records.out_of_service {
                println!(
                    "{:<12} {:<10} {:<24} {}",
                    o.machine,
                    board_text(o.board),
                    time(o.since),
                    o.reason
                );
            }
        }
        BoardCommand::OutOfService {
            machine: Some(machine),
            x,
            y,
            z,
            reason,
            state,
        } => {
            let board = BoardArg {
                machine,
                x: x.unwrap_or_default(),
                y: y.unwrap_or_default(),
                z: z.unwrap_or_default(),
            };
            let reason = reason.unwrap_or_else(|| REASON_ADMIN.to_owned());
            change(&state.path()?, &board, |boards, now| {
                let b = board.board();
                if boards
                    .out_of_service
                    .iter()
                    .any(|o| o.machine == board.machine && o.board == b)
                {
                    return Err(format!("{} is already out of service", describe(&board)));
                }
                boards.out_of_service.push(OutOfService {
                    machine: board.machine.clone(),
                    board: b,
                    since: now,
                    reason,
                });
                Ok(format!("{} is out of service", describe(&board)))
            })?;
        }
        BoardCommand::InService { board, state } => {
            change(&state.path()?, &board, |boards, _| {
                let b = board.board();
                let before = boards.out_of_service.len();
                boards
                    .out_of_service
                    .retain(|o| !(o.machine == board.machine && o.board == b));
                let mut closed = 0;
                for k in &mut boards.reports {
                    if !k.closed && k.report.machine == board.machine && k.report.board == b {
                        k.closed = true;
                        closed += 1;
                    }
                }
                if boards.out_of_service.len() == before && closed == 0 {
                    return Err(format!(
                        "{} is not out of service and has no open reports",
                        describe(&board)
                    ));
                }
                Ok(format!(
                    "{} is in service ({closed} open reports closed)",
                    describe(&board)
                ))
            })?;
        }
    }
    Ok(())
}

/// The board records of a state file, read without locking it (so while
/// a server runs too).
fn read(path: &Path) -> Result<BoardRecords, String> {
    if !path.is_file() {
        return Err(format!("no state file {}", path.display()));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let version = crate::store::schema::version(&conn).map_err(|e| e.to_string())?;
    if version < crate::store::schema::current() {
        // Written by an older release, before board records: none yet.
        return Ok(BoardRecords::default());
    }
    drop(conn);
    // The tables and the change journal together: the latest changes of a
    // running server may be in the journal only.
    let (records, bad) = crate::store::snapshot::read(path)?;
    for b in bad {
        eprintln!("spalloc-server: skipped an unreadable row: {b}");
    }
    Ok(records.map(|r| r.boards).unwrap_or_default())
}

/// Applies `edit` to the board records of a state file held exclusively
/// (refused while a server runs on it), for a board that must be a live
/// board of a machine recorded in it; prints what `edit` says.
fn change(
    path: &Path,
    board: &BoardArg,
    edit: impl FnOnce(&mut BoardRecords, f64) -> Result<String, String>,
) -> Result<(), String> {
    if !path.is_file() {
        return Err(format!("no state file {}", path.display()));
    }
    let (mut store, opened) = Store::open(path, Synchronous::Full).map_err(|e| match e {
        StoreError::Lock(held @ LockError::Held { .. }) => format!(
            "{held}\nthe server is running: change boards with its admin API, or stop it first"
        ),
        other => other.to_string(),
    })?;
    let Some(records) = opened.records else {
        return Err(format!(
            "{} records no machines yet: start the server on it once",
            path.display()
        ));
    };
    let machine = records
        .machines
        .iter()
        .find(|m| m.name == board.machine)
        .cloned()
        .map(Machine::from)
        .ok_or_else(|| format!("no machine named {:?} in {}", board.machine, path.display()))?;
    if !machine.is_live(&board.board()) {
        return Err(format!("{} is not a live board", describe(board)));
    }
    let mut boards = records.boards;
    let said = edit(&mut boards, crate::clock::now())?;
    let changes = RecordChanges {
        next_job_id: records.next_job_id,
        boards: Some(boards),
        ..RecordChanges::default()
    };
    store.commit(&[(changes, false)])?;
    eprintln!("{said}");
    Ok(())
}

fn describe(board: &BoardArg) -> String {
    format!("board {} of {}", board_text(board.board()), board.machine)
}

fn board_text(b: Board) -> String {
    format!("{},{},{}", b.x, b.y, b.z)
}

fn time(t: f64) -> String {
    crate::rest::time_format::instant(t).unwrap_or_else(|| "-".to_owned())
}
