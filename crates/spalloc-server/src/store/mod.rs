//! Durable state: the controller's [`Records`] in a SQLite file.
//!
//! What is stored is what an operator would recognise, one row per record
//! (`sqlite3 FILE 'select id, state, record from jobs'`): each job (request,
//! owner, state, boards, power, keepalive settings, times), each destroyed
//! job's reason, the next job ID, each machine's definition, and freed
//! boards still waiting out `seconds_before_free`. A row is
//! written only when it changes. The allocators and queues are not stored:
//! [`Controller::from_records`] rebuilds them.
//!
//! Writing happens off the server's lock ([`writer`]): the first thread
//! with a change to commit appends it, together with everything changed
//! meanwhile, to the change journal beside the file ([`journal`], one
//! write); the server (`server::shared`) holds each turn's replies,
//! notifications and BMP commands until the writer says the turn is
//! committed, so a reply never acknowledges a change that a crash could
//! lose, and calls that change nothing never wait behind the disk for the
//! lock. The writer's applier thread writes the journal into the tables in
//! large transactions, each the batch's net effect (a job changed by ten
//! turns is written once), and empties it; [`Store::open`] applies what a
//! crash left in it. Checkpoints run on a thread of their own
//! ([`checkpoint`]). Tools that read a file a server is using read the
//! tables and the journal together ([`snapshot`]).
//!
//! With `synchronous = NORMAL` (the default) a commit has reached the
//! operating system before anything it caused leaves, so it survives the
//! server being killed (`kill -9`, a panic, the OOM killer) at any moment;
//! with `synchronous = FULL` (`[store] synchronous = "full"` in the
//! configuration) it is also on the disk, so it survives the machine
//! losing power, at the cost of one flush of the journal per commit group
//! (the tables, in WAL mode, are flushed by the applier before it empties
//! the journal).
//!
//! Faults: a state file (or its journal) that cannot be opened, locked or
//! written refuses start-up with the reason ([`StoreError`]); a file that is not a database
//! or is damaged is copied aside under a name of its own
//! (`FILE.damaged-TIME`) and what can be read of it is kept; a file written
//! by a newer release is left alone and start-up refused. The schema has
//! migrations ([`schema`]).

pub mod board_rows;
pub mod checkpoint;
pub mod journal;
pub mod lock;
pub mod mirror;
pub mod schema;
pub mod snapshot;
pub mod tombstones;
pub mod writer;

use crate::config::ServerConfig;
use crate::core::board_service::BoardRecords;
use crate::core::controller::Controller;
use crate::core::cooling::CoolingBoards;
use crate::core::job::Job;
use crate::core::records::{MachineRecord, RecordChanges, Records};
use crate::core::retired::RetiredEntry;
use crate::core::usage::UsageRecord;
use crate::service::Service;
use lock::{LockError, StateLock};
use rusqlite::{params, Connection, ErrorCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use thiserror::Error;
use tracing::{error, info, warn};

/// How hard a commit tries to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Survives the server being killed; a power cut may lose the last
    /// commits (the file stays consistent).
    #[default]
    Normal,
    /// Survives a power cut too: one flush to disk per commit group.
    Full,
}

/// Why the state file cannot be used. Each refuses start-up.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Another server holds the file, or its lock file cannot be made.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// SQLite could not open, read or write it (permissions, a read-only
    /// directory, a full disk...).
    #[error(
        "state file {path}: {source}; fix the file or its directory (or pass another --state \
         FILE, or --no-state) and start again"
    )]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The change journal beside it (`FILE.changes-0`, `-1`) could not be
    /// opened, read or emptied.
    #[error(
        "state file {path}'s journal: {source}; fix the files or their directory (or pass \
         another --state FILE, or --no-state) and start again"
    )]
    Journal {
        /// The state file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Written by a newer release.
    #[error(
        "state file {path} has schema version {found}, newer than this release's {supported}; \
         run the newer release, or move the file away to start afresh"
    )]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// Ours.
        supported: i64,
    },
}

/// An open, locked state file.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    synchronous: Synchronous,
    /// The next job ID as last committed (not rewritten while unchanged).
    next_job_id_written: Option<u64>,
    /// The number of the last change journal entry in the tables.
    journal_seq: u64,
    _lock: StateLock,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// What opening found.
#[derive(Debug)]
pub struct Opened {
    /// The records read (none for a new file).
    pub records: Option<Records>,
    /// What was wrong and set aside, for the log.
    pub damage: Vec<String>,
    /// The change journal, for [`writer::Writer::spawn`] (a tool that
    /// commits through [`Store::commit`] drops it): empty, unless the
    /// tables could not take what it held (see `unapplied`).
    pub journal: journal::Journal,
    /// Journal entries the tables could not take at start-up (a full
    /// disk), oldest first: already in `records`, for the writer to write
    /// into the tables.
    pub unapplied: Vec<journal::Entry>,
}

/// Whether an SQLite error means the file's content is damaged (rather
/// than that it cannot be reached or written).
fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    )
}

impl Store {
    /// Locks and opens (creating if need be) the state file at `path`,
    /// migrates its schema, and reads its records. A damaged file is
    /// copied aside and what could be read of it is returned; see the
    /// module documentation for what refuses start-up.
    pub fn open(path: &Path, sync: Synchronous) -> Result<(Store, Opened), StoreError> {
        let lock = StateLock::acquire(path)?;
        let mut damage = Vec::new();
        let sqlite = |source| StoreError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let mut conn = match Store::connect(path, sync) {
            Ok(conn) => conn,
            Err(e) if is_damage(&e) => {
                let aside = set_aside(path);
                damage.push(format!(
                    "{}: {e}; moved to {} (nothing could be read from it)",
                    path.display(),
                    aside.display()
                ));
                Store::connect(path, sync).map_err(sqlite)?
            }
            Err(e) => return Err(sqlite(e)),
        };
        let found = schema::version(&conn).map_err(sqlite)?;
        if found > schema::current() {
            return Err(StoreError::TooNew {
                path: path.to_owned(),
                found,
                supported: schema::current(),
            });
        }
        if found == 0 && schema::is_unversioned_legacy(&conn).map_err(sqlite)? {
            drop(conn);
            let aside = set_aside(path);
            damage.push(format!(
                "{}: written by a development release without schema versions, which this \
                 release cannot read; moved to {}",
                path.display(),
                aside.display()
            ));
            conn = Store::connect(path, sync).map_err(sqlite)?;
        }
        schema::migrate(&mut conn).map_err(sqlite)?;
        let mut store = Store {
            conn,
            path: path.to_owned(),
            synchronous: sync,
            next_job_id_written: None,
            journal_seq: 0,
            _lock: lock,
        };
        let (journal, unapplied) = store.apply_journal(&mut damage)?;
        let (records, bad_rows) = store.read().map_err(sqlite)?;
        let records = journal::apply_over(records, &unapplied);
        if !bad_rows.is_empty() {
            let copy = copy_aside(path);
            damage.push(format!(
                "{}: unreadable rows ({}); a copy of the file is at {}",
                path.display(),
                bad_rows.join("; "),
                copy.display()
            ));
        }
        Ok((
            store,
            Opened {
                records,
                damage,
                journal,
                unapplied,
            },
        ))
    }

    /// Writes into the tables what the change journal holds beyond what
    /// they already have (a server stopped by a crash leaves some), copies
    /// damaged journal files aside, and empties the journal.
    ///
    /// If the tables cannot take them (a full disk), the journal keeps them
    /// and they are returned, oldest first, for the writer to apply later.
    fn apply_journal(
        &mut self,
        damage: &mut Vec<String>,
    ) -> Result<(journal::Journal, Vec<journal::Entry>), StoreError> {
        let path = self.path.clone();
        let io = |source| StoreError::Journal {
            path: path.clone(),
            source,
        };
        let (mut journal, recovered) =
            journal::Journal::open(&self.path, self.synchronous).map_err(io)?;
        for (file, what) in &recovered.damaged {
            let copy = copy_aside(file);
            damage.push(format!(
                "{}: {what}; the changes before it are kept, a copy of the file is at {}",
                file.display(),
                copy.display()
            ));
        }
        let applied = self
            .journal_applied()
            .map_err(|source| StoreError::Sqlite {
                path: self.path.clone(),
                source,
            })?;
        let fresh: Vec<(&RecordChanges, bool)> = recovered
            .entries
            .iter()
            .filter(|e| e.seq > applied)
            .map(|e| (&e.changes, e.all))
            .collect();
        let last = recovered
            .entries
            .last()
            .map_or(applied, |e| e.seq.max(applied));
        if !fresh.is_empty() {
            info!(
                file = %self.path.display(),
                changes = fresh.len(),
                "applying the change journal left by the last run"
            );
        }
        // Numbering carries on from the highest number ever used.
        self.journal_seq = last;
        if fresh.is_empty() {
            journal.clear().map_err(io)?;
            return Ok((journal, Vec::new()));
        }
        match self.commit_through(&fresh, Some(last)) {
            Ok(()) => {
                journal.clear().map_err(io)?;
                Ok((journal, Vec::new()))
            }
            Err(e) => {
                // A full disk, say: the journal keeps them, the server
                // starts from tables and journal together, and the writer's
                // applier tries again (the server recovers by itself when
                // the disk does).
                warn!(
                    file = %self.path.display(),
                    error = %e,
                    "cannot write the change journal into the tables yet; it is kept and will be \
                     tried again"
                );
                journal.keep().map_err(io)?;
                let unapplied = recovered
                    .entries
                    .into_iter()
                    .filter(|e| e.seq > applied)
                    .collect();
                Ok((journal, unapplied))
            }
        }
    }

    /// The last journal entry the tables hold.
    fn journal_applied(&self) -> rusqlite::Result<u64> {
        journal_applied(&self.conn)
    }

    /// The number of the last journal entry applied (the writer numbers
    /// its entries on from it).
    pub fn journal_seq(&self) -> u64 {
        self.journal_seq
    }

    fn connect(path: &Path, sync: Synchronous) -> rusqlite::Result<Connection> {
        let conn = Connection::open(path)?;
        conn.busy_handler(Some(wait_briefly))?;
        // SQLite's default 4 KiB pages: the tables are written in batches
        // by the applier (`writer`), where a page holds several rows; 1 KiB
        // pages, chosen when every change was its own transaction, cost
        // about 10% more server CPU over 1,000 creates. This only takes
        // effect on a new file (before WAL mode is set); older files keep
        // their 1 KiB pages.
        conn.pragma_update(None, "page_size", 4096)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // After a checkpoint lets the WAL start again, shrink its file.
        conn.pragma_update(None, "journal_size_limit", 8 << 20)?;
        let level = match sync {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", level)?;
        // Reading the schema proves the file is a database; writing the
        // version proves it (and its directory, for the WAL) is writable.
        let version = schema::version(&conn)?;
        conn.pragma_update(None, "user_version", version)?;
        Ok(conn)
    }

    /// How hard its commits try to reach the disk.
    pub fn synchronous(&self) -> Synchronous {
        self.synchronous
    }

    /// Where the file is (other modules, such as accounts, open their own
    /// connection to it).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The records in the file (`None` if it has none yet), and a
    /// description of each row that could not be read (skipped; a damaged
    /// job row makes its job destroyed with
    /// [`REASON_BAD_RECORD`](crate::core::controller::REASON_BAD_RECORD)).
    pub fn read(&self) -> rusqlite::Result<(Option<Records>, Vec<String>)> {
        read_records(&self.conn)
    }

    /// Writes a group of changes (oldest first) in one transaction. With a
    /// change whose `all` is set, every record is replaced from it on.
    /// Only the group's net effect is encoded and written: a job changed by
    /// several turns of the group is written once, as it ended.
    pub fn commit(&mut self, group: &[(RecordChanges, bool)]) -> Result<(), String> {
        let group: Vec<(&RecordChanges, bool)> = group.iter().map(|(c, all)| (c, *all)).collect();
        self.commit_through(&group, None)
    }

    /// [`Store::commit`] of change journal entries, recording in the same
    /// transaction that entries up to `journal_seq` are in the tables.
    pub fn commit_through(
        &mut self,
        group: &[(&RecordChanges, bool)],
        journal_seq: Option<u64>,
    ) -> Result<(), String> {
        let net = Net::of(group);
        let forgets_an_id = net.forgets_an_id();
        let net = Encoded::new(&net).map_err(|e| e.to_string())?;
        // BEGIN and COMMIT as cached statements: `Connection::transaction`
        // parses them anew each time, a measurable part of a small commit.
        let conn = &self.conn;
        conn.prepare_cached("BEGIN")
            .and_then(|mut s| s.execute([]))
            .map_err(|e| e.to_string())?;
        // The next job ID is written only when a job ID may leave the
        // file (see `Net::forgets_an_id`): otherwise the rows themselves
        // carry the highest ID handed out, which `Store::read` takes into
        // account, so a create writes its job's row and nothing else.
        let next_job_id = Some(net.next_job_id)
            .filter(|id| self.next_job_id_written != Some(*id) && forgets_an_id);
        let written = net
            .write(conn)
            .and_then(|()| match next_job_id {
                Some(id) => Encoded::write_next_job_id(conn, id),
                None => Ok(()),
            })
            .and_then(|()| match journal_seq {
                Some(seq) => conn
                    .prepare_cached(
                        "INSERT INTO meta (key, value) VALUES ('journal_applied', ?1)
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    )?
                    .execute(params![seq])
                    .map(drop),
                None => Ok(()),
            })
            .and_then(|()| conn.prepare_cached("COMMIT")?.execute([]).map(drop));
        if let Err(e) = written {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            self.next_job_id_written = None;
            return Err(e.to_string());
        }
        if next_job_id.is_some() {
            self.next_job_id_written = next_job_id;
        }
        Ok(())
    }
}

/// The records in the file behind `conn` (`None` if it has none yet), and
/// a description of each row that could not be read (see [`Store::read`]).
pub fn read_records(conn: &Connection) -> rusqlite::Result<(Option<Records>, Vec<String>)> {
    let mut bad = Vec::new();
    let next_job_id: Option<u64> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'next_job_id'",
            [],
            |r| r.get(0),
        )
        .ok();
    let mut machines = Vec::new();
    let mut query = conn.prepare("SELECT name, definition FROM machines ORDER BY position")?;
    let rows = query.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (name, text) = row?;
        match serde_json::from_str::<MachineRecord>(&text) {
            Ok(m) => machines.push(m),
            Err(e) => bad.push(format!("machine {name}: {e}")),
        }
    }
    let mut retired: Vec<RetiredEntry> = Vec::new();
    let mut query = conn.prepare("SELECT seq, job_id, reason FROM retired ORDER BY seq")?;
    let rows = query.query_map([], |r| {
        Ok((
            r.get::<_, u64>(0)?,
            r.get::<_, u64>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })?;
    for row in rows {
        match row {
            Ok(entry) => retired.push(entry),
            Err(e) => bad.push(format!("a destroyed job's reason: {e}")),
        }
    }
    let tombstones = tombstones::read(conn, &mut bad)?;
    let mut jobs = Vec::new();
    let mut damaged_ids = Vec::new();
    let mut query = conn.prepare("SELECT id, record FROM jobs ORDER BY id")?;
    let rows = query.query_map([], |r| Ok((r.get::<_, u64>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (id, text) = row?;
        match serde_json::from_str::<Job>(&text) {
            Ok(job) if job.id == id => jobs.push(job),
            Ok(job) => bad.push(format!("job {id}: the record says job {}", job.id)),
            Err(e) => {
                bad.push(format!("job {id}: {e}"));
                damaged_ids.push(id);
            }
        }
    }
    let mut cooling = Vec::new();
    let mut query = conn.prepare("SELECT job_id, record FROM cooling_boards ORDER BY job_id")?;
    let rows = query.query_map([], |r| Ok((r.get::<_, u64>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (id, text) = row?;
        match serde_json::from_str::<CoolingBoards>(&text) {
            Ok(entry) if entry.job_id == id => cooling.push(entry),
            Ok(entry) => bad.push(format!(
                "boards waiting to be freed of job {id}: the record says job {}",
                entry.job_id
            )),
            Err(e) => bad.push(format!("boards waiting to be freed of job {id}: {e}")),
        }
    }
    let usage = read_usage(conn, &mut bad)?;
    let boards = board_rows::read(conn, &mut bad)?;
    if next_job_id.is_none()
        && jobs.is_empty()
        && retired.is_empty()
        && usage.is_empty()
        && bad.is_empty()
        && cooling.is_empty()
        && boards == BoardRecords::default()
    {
        return Ok((None, bad));
    }
    // A damaged job is remembered as destroyed, with a reason saying so.
    let first = retired.last().map_or(0, |e| e.0 + 1);
    for (seq, id) in (first..).zip(damaged_ids) {
        retired.retain(|e| e.1 != id);
        retired.push((
            seq,
            id,
            Some(crate::core::controller::REASON_BAD_RECORD.to_owned()),
        ));
    }
    // Job IDs never go back, whatever was lost.
    let highest = jobs
        .iter()
        .map(|j| j.id)
        .chain(retired.iter().map(|e| e.1))
        .max()
        .map_or(1, |id| id + 1);
    Ok((
        Some(Records {
            next_job_id: next_job_id.unwrap_or(1).max(highest),
            machines,
            jobs,
            retired,
            boards,
            usage,
            cooling,
            tombstones,
        }),
        bad,
    ))
}

/// The last change journal entry the tables behind `conn` hold.
pub fn journal_applied(conn: &Connection) -> rusqlite::Result<u64> {
    match conn.query_row(
        "SELECT value FROM meta WHERE key = 'journal_applied'",
        [],
        |r| r.get::<_, u64>(0),
    ) {
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(0),
        other => other,
    }
}

/// The usage history's rows; an unreadable row is described in `bad` and
/// skipped.
fn read_usage(conn: &Connection, bad: &mut Vec<String>) -> rusqlite::Result<Vec<UsageRecord>> {
    let mut usage = Vec::new();
    let mut query = conn.prepare("SELECT job_id, record FROM usage_history ORDER BY job_id")?;
    let rows = query.query_map([], |r| Ok((r.get::<_, u64>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (id, text) = row?;
        match serde_json::from_str::<UsageRecord>(&text) {
            Ok(record) => usage.push(record),
            Err(e) => bad.push(format!("usage of job {id}: {e}")),
        }
    }
    Ok(usage)
}

/// The net effect of a group of change sets: what applying them one by
/// one would leave, by reference.
struct Net<'a> {
    all: bool,
    next_job_id: u64,
    machines: Option<&'a [MachineRecord]>,
    jobs: BTreeMap<u64, Option<&'a Job>>,
    retired: BTreeMap<u64, &'a RetiredEntry>,
    floor: Option<u64>,
    boards: Option<&'a BoardRecords>,
    usage: BTreeMap<u64, &'a UsageRecord>,
    cooling: BTreeMap<u64, Option<&'a CoolingBoards>>,
    tombstones: BTreeMap<u64, Option<&'a crate::core::tombstone::Tombstone>>,
}

impl<'a> Net<'a> {
    /// Whether the group may take the only row holding some job ID out of
    /// the file (a job row deleted, a destroyed job's reason forgotten, or
    /// every row rewritten): then the next job ID must be written, so that
    /// IDs never go back. Otherwise every ID handed out since the last
    /// write of the next job ID is in a job row or a reason row.
    fn forgets_an_id(&self) -> bool {
        self.all || self.floor.is_some() || self.jobs.values().any(Option::is_none)
    }

    fn of(group: &[(&'a RecordChanges, bool)]) -> Net<'a> {
        let mut net = Net {
            all: false,
            next_job_id: 0,
            machines: None,
            jobs: BTreeMap::new(),
            retired: BTreeMap::new(),
            floor: None,
            boards: None,
            usage: BTreeMap::new(),
            cooling: BTreeMap::new(),
            tombstones: BTreeMap::new(),
        };
        for &(changes, all) in group {
            if all {
                net.all = true;
                net.jobs.clear();
                net.retired.clear();
                net.floor = None;
                net.cooling.clear();
                net.tombstones.clear();
            }
            tombstones::net(&mut net.tombstones, &changes.tombstones);
            net.next_job_id = changes.next_job_id;
            if let Some(machines) = &changes.machines {
                net.machines = Some(machines);
            }
            if let Some(boards) = &changes.boards {
                net.boards = Some(boards);
            }
            for (id, job) in &changes.jobs {
                net.jobs.insert(*id, job.as_ref());
            }
            for record in &changes.usage {
                net.usage.insert(record.job_id, record);
            }
            for (id, entry) in &changes.cooling {
                net.cooling.insert(*id, entry.as_ref());
            }
            if !changes.retired.is_empty() {
                for entry in &changes.retired {
                    net.retired.insert(entry.0, entry);
                }
                let floor = net
                    .floor
                    .map_or(changes.retired_floor, |f| f.max(changes.retired_floor));
                net.retired = net.retired.split_off(&floor);
                net.floor = Some(floor);
            }
        }
        net
    }
}

/// A group's net change, encoded as rows (JSON text) before the
/// transaction.
struct Encoded {
    all: bool,
    next_job_id: u64,
    machines: Option<Vec<(String, String)>>,
    jobs: Vec<(u64, Option<(&'static str, String)>)>,
    retired: Vec<RetiredEntry>,
    floor: Option<u64>,
    boards: Option<BoardRecords>,
    /// `(job, owner, group, finish time, board-seconds, record)`.
    usage: Vec<UsageRow>,
    cooling: Vec<(u64, Option<String>)>,
    tombstones: Vec<(u64, Option<String>)>,
}

/// One usage history row, encoded.
type UsageRow = (u64, String, Option<String>, Option<f64>, f64, String);

impl Encoded {
    fn new(net: &Net<'_>) -> serde_json::Result<Encoded> {
        let machines = match net.machines {
            None => None,
            Some(ms) => Some(
                ms.iter()
                    .map(|m| Ok((m.name.clone(), serde_json::to_string(m)?)))
                    .collect::<serde_json::Result<Vec<_>>>()?,
            ),
        };
        let mut jobs = Vec::with_capacity(net.jobs.len());
        for (id, job) in &net.jobs {
            let row = match job {
                Some(job) => Some((
                    spalloc_protocol::JobState::name(job.state),
                    serde_json::to_string(job)?,
                )),
                None => None,
            };
            jobs.push((*id, row));
        }
        Ok(Encoded {
            all: net.all,
            next_job_id: net.next_job_id,
            machines,
            jobs,
            retired: net.retired.values().map(|e| (*e).clone()).collect(),
            floor: net.floor,
            boards: net.boards.cloned(),
            usage: net
                .usage
                .values()
                .map(|r| {
                    Ok((
                        r.job_id,
                        r.owner.clone(),
                        r.group.clone(),
                        r.finish_time,
                        r.board_seconds,
                        serde_json::to_string(r)?,
                    ))
                })
                .collect::<serde_json::Result<Vec<_>>>()?,
            cooling: net
                .cooling
                .iter()
                .map(|(id, e)| Ok((*id, e.map(serde_json::to_string).transpose()?)))
                .collect::<serde_json::Result<_>>()?,
            tombstones: tombstones::encode(&net.tombstones)?,
        })
    }

    fn write(&self, tx: &Connection) -> rusqlite::Result<()> {
        if self.all {
            tx.execute("DELETE FROM jobs", [])?;
            tx.execute("DELETE FROM retired", [])?;
            tx.execute("DELETE FROM cooling_boards", [])?;
        }
        if let Some(machines) = &self.machines {
            tx.execute("DELETE FROM machines", [])?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO machines (position, name, definition) VALUES (?1, ?2, ?3)",
            )?;
            for (i, (name, text)) in machines.iter().enumerate() {
                insert.execute(params![i as i64, name, text])?;
            }
        }
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO jobs (id, state, record) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, record = excluded.record",
            )?;
            let mut delete = tx.prepare_cached("DELETE FROM jobs WHERE id = ?1")?;
            for (id, row) in &self.jobs {
                match row {
                    Some((state, text)) => upsert.execute(params![id, state, text])?,
                    None => delete.execute(params![id])?,
                };
            }
        }
        if !self.cooling.is_empty() {
            let mut upsert = tx.prepare_cached(
                "INSERT OR REPLACE INTO cooling_boards (job_id, record) VALUES (?1, ?2)",
            )?;
            let mut delete = tx.prepare_cached("DELETE FROM cooling_boards WHERE job_id = ?1")?;
            for (id, row) in &self.cooling {
                match row {
                    Some(text) => upsert.execute(params![id, text])?,
                    None => delete.execute(params![id])?,
                };
            }
        }
        if let Some(floor) = self.floor {
            let mut upsert = tx.prepare_cached(
                "INSERT OR REPLACE INTO retired (seq, job_id, reason) VALUES (?1, ?2, ?3)",
            )?;
            for (seq, id, reason) in &self.retired {
                upsert.execute(params![seq, id, reason])?;
            }
            tx.prepare_cached("DELETE FROM retired WHERE seq < ?1")?
                .execute(params![floor])?;
        }
        if let Some(boards) = &self.boards {
            board_rows::write(tx, boards)?;
        }
        if !self.usage.is_empty() {
            // Never deleted, not even when every record is rewritten.
            let mut upsert = tx.prepare_cached(
                "INSERT OR REPLACE INTO usage_history
                     (job_id, owner, grp, finish_time, board_seconds, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (id, owner, group, finish, seconds, record) in &self.usage {
                upsert.execute(params![id, owner, group, finish, seconds, record])?;
            }
        }
        tombstones::write(tx, &self.tombstones, self.all)?;
        Ok(())
    }

    /// Records the next job ID (once per commit, after every change set).
    fn write_next_job_id(tx: &Connection, next_job_id: u64) -> rusqlite::Result<()> {
        tx.prepare_cached(
            "INSERT INTO meta (key, value) VALUES ('next_job_id', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE value <> excluded.value",
        )?
        .execute(params![next_job_id])?;
        Ok(())
    }
}

/// How a commit waits for another connection to the file (the checkpoint
/// thread's truncating checkpoint, or another module's): in steps of
/// 100 µs, for up to about 5 s. SQLite's own busy timeout sleeps up to
/// 100 ms at a time, much longer than such a wait lasts.
fn wait_briefly(attempt: i32) -> bool {
    std::thread::sleep(std::time::Duration::from_micros(100));
    attempt < 50_000
}

/// A name beside `path` for a copy set aside now: `FILE.damaged-SECONDS`
/// (with a counter if taken), so that a second damaged copy never
/// overwrites the first.
fn aside_name(path: &Path) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut n = 0;
    loop {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".damaged-{secs}"));
        if n > 0 {
            name.push(format!("-{n}"));
        }
        let candidate = PathBuf::from(name);
        if !candidate.exists() {
            return candidate;
        }
        n += 1;
    }
}

/// Moves a damaged file (and its WAL files) aside; returns the new name.
fn set_aside(path: &Path) -> PathBuf {
    let to = aside_name(path);
    for suffix in ["", "-wal", "-shm"] {
        let mut from = path.as_os_str().to_owned();
        from.push(suffix);
        let mut dest = to.as_os_str().to_owned();
        dest.push(suffix);
        let _ = std::fs::rename(&from, &dest);
    }
    to
}

/// Copies a file with damaged rows aside (the original stays in use).
fn copy_aside(path: &Path) -> PathBuf {
    let to = aside_name(path);
    if let Err(e) = std::fs::copy(path, &to) {
        warn!(error = %e, "could not copy the damaged state file aside");
    }
    to
}

/// The default state file for a configuration file: `.NAME.state.sqlite`
/// next to it (for `/etc/spalloc/server.toml`,
/// `/etc/spalloc/.server.toml.state.sqlite`).
pub fn default_state_path(config: &Path) -> PathBuf {
    let name = config
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "spalloc-server".into());
    config.with_file_name(format!(".{name}.state.sqlite"))
}

/// What [`writer::Writer::spawn`] takes of an opened state file.
pub struct ForWriter {
    /// The file.
    pub store: Store,
    /// Its change journal.
    pub journal: journal::Journal,
    /// What it holds (tables and journal).
    pub committed: Option<mirror::Mirror>,
    /// Journal entries not in the tables yet (see [`Opened::unapplied`]).
    pub unapplied: Vec<journal::Entry>,
}

/// Opens `config.state_file` for a server about to start with `service`
/// and, unless `config.cold_start`, carries on from its records (see
/// [`Controller::from_records`]); a cold start keeps only the next job ID,
/// so that IDs never go back. Returns the store with the records it holds
/// (for [`writer::Writer::spawn`]); `Ok(None)` without a state file; an
/// error (see [`StoreError`]) refuses start-up.
pub fn open_and_restore(
    config: &ServerConfig,
    service: &mut Service,
    now: f64,
) -> Result<Option<ForWriter>, StoreError> {
    let Some(path) = config.state_file.as_deref() else {
        return Ok(None);
    };
    let (store, opened) = Store::open(path, config.state_synchronous)?;
    for damage in &opened.damage {
        error!(
            "damaged state file: {damage}; carrying on with what could be read \
             (inspect the copy, then delete it)"
        );
    }
    let settings = service.controller.settings();
    let machines: Vec<_> = config.machines.iter().map(|m| m.machine.clone()).collect();
    let committed = opened.records.as_ref().map(mirror::Mirror::of);
    let quotas = service.controller.quota_settings().clone();
    match opened.records {
        None => info!(file = %path.display(), "no saved state: cold start"),
        Some(mut records) if config.cold_start => {
            info!(file = %path.display(), "cold start: the saved state is discarded");
            records.jobs.clear();
            records.retired.clear();
            records.tombstones.clear();
            records.machines.clear();
            // The usage history is accounting: a cold start keeps it.
            service.controller = Controller::from_records(settings, records, machines, now);
        }
        Some(records) => {
            service.controller = Controller::from_records(settings, records, machines, now);
            info!(
                file = %path.display(),
                jobs = service.controller.live_jobs().count(),
                "state restored"
            );
        }
    }
    service.controller.set_quota_settings(quotas);
    Ok(Some(ForWriter {
        store,
        journal: opened.journal,
        committed,
        unapplied: opened.unapplied,
    }))
}

#[cfg(test)]
mod tests;
