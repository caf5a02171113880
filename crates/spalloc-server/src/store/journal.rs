//! The change journal: each commit group appended to a file in one write.
//!
//! Why it exists: every reply that acknowledges a change waits for that
//! change to be durable, and a SQLite transaction costs tens of
//! microseconds however small it is (file locks, whole WAL pages with
//! their checksums, B-tree updates of several tables). Appending the
//! group's changed records to a file costs one `pwrite` (plus one
//! `fdatasync` with `synchronous = FULL`) and is exactly as durable: once
//! `pwrite` returns, the kernel has the bytes, and `kill -9` cannot take
//! them back. The writer's applier thread ([`super::writer`]) then writes
//! what the journal holds into the SQLite tables in large groups, off the
//! request path (a job created and destroyed between two of its rounds
//! never touches SQLite at all), and empties the journal. Opening a state
//! file applies whatever its journal still holds ([`super::Store::open`]).
//!
//! Hand-written because what it needs is a few lines over `std::fs`
//! (positioned writes, `set_len`, `sync_data`) and a checksum crate, while
//! the embedded-log crates bring their own recovery policy, threads and
//! formats we would have to fit around SQLite's. The format, after
//! SQLite's own WAL:
//!
//! * a header: [`MAGIC`], then the file's generation (u64 LE), which
//!   changes each time the file is emptied;
//! * then frames `[length: u32 LE][CRC-32 of generation and payload: u32
//!   LE][payload]`, the payload one change set as JSON
//!   (`{"seq":..,"all":..,"changes":..}`, the same serde as the SQLite
//!   rows), `seq` increasing across files and restarts ([`super::Store`]
//!   keeps the last one applied in its `meta` table).
//!
//! Emptying a file writes a new header and leaves the old frames where
//! they are, to be written over: the file keeps its blocks, so an append
//! with `synchronous = FULL` flushes data only, not the file system's
//! metadata (truncating and growing the file made every flush a journal
//! commit of the file system, ten times slower). An old frame fails the
//! checksum of the new generation, so reading stops at the first frame
//! that fails it, as SQLite's WAL does.
//!
//! Two files, `FILE.changes-0` and `FILE.changes-1`, take turns so that a
//! steady stream of commits never makes the journal grow without end: the
//! applier switches the committer to the empty file before it takes a batch
//! ([`Journal::switch`]), and once SQLite holds the batch it empties the
//! other one ([`Journal::release_through`]).
//!
//! Reading back: the first frame that is incomplete or fails its checksum
//! ends a file (a write cut short by a full disk, whose change was refused
//! and never acknowledged, or what is left of an earlier generation). If a
//! valid frame of the file's generation follows such a frame, the frame was
//! damaged, not old: reading that file stops there, and the file is copied
//! aside under its own name (see `Store::open`) with a line saying so; so
//! is a frame whose checksum holds but whose content cannot be read.

use super::mirror::Mirror;
use super::Synchronous;
use crate::core::records::{RecordChanges, Records};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The first bytes of a journal file.
pub const MAGIC: &[u8; 16] = b"spalloc changes\x02";

/// The header: [`MAGIC`] and the generation.
pub const HEADER: usize = MAGIC.len() + 8;

/// A file emptied while longer than this is cut back (after one huge
/// change set, say a whole state rewritten); otherwise it keeps its blocks.
const KEEP_AT_MOST: u64 = 16 << 20;

/// Frame header: length and checksum.
const FRAME_HEADER: usize = 8;

/// The longest payload read back: a larger length is damage, not an
/// allocation to attempt (a whole state of a 1,200-board machine with a
/// thousand jobs is a few MB).
const MAX_PAYLOAD: usize = 1 << 30;

/// One change set as written.
#[derive(Serialize)]
struct EntryRef<'a> {
    seq: u64,
    all: bool,
    changes: &'a RecordChanges,
}

/// One change set as read back.
#[derive(Debug, Deserialize)]
pub struct Entry {
    /// Its journal sequence number.
    pub seq: u64,
    /// Whether it rewrites every record.
    pub all: bool,
    /// The records it changed.
    pub changes: RecordChanges,
}

/// One of the two files.
#[derive(Debug)]
struct Segment {
    file: File,
    path: PathBuf,
    /// Where the next frame goes (the end of the last complete one).
    end: u64,
    /// The highest sequence number in it (0: empty).
    last_seq: u64,
    /// Its frames' generation.
    generation: u64,
}

impl Segment {
    fn open(path: PathBuf) -> std::io::Result<Segment> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        Ok(Segment {
            file,
            path,
            end: 0,
            last_seq: 0,
            generation: 0,
        })
    }

    /// Empties it: a header of generation `generation`, the old frames
    /// left to be written over.
    fn clear(&mut self, generation: u64) -> std::io::Result<()> {
        if self.file.metadata()?.len() > KEEP_AT_MOST {
            self.file.set_len(0)?;
        }
        let mut header = [0u8; HEADER];
        header[..MAGIC.len()].copy_from_slice(MAGIC);
        header[MAGIC.len()..].copy_from_slice(&generation.to_le_bytes());
        self.file.write_all_at(&header, 0)?;
        self.end = HEADER as u64;
        self.last_seq = 0;
        self.generation = generation;
        Ok(())
    }
}

/// A frame's checksum: of its generation, then its payload.
fn checksum(generation: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&generation.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// What the journal held when opened.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Every complete, undamaged entry, oldest first.
    pub entries: Vec<Entry>,
    /// Damaged files: `(file, what was wrong)`, to be copied aside.
    pub damaged: Vec<(PathBuf, String)>,
}

/// The two journal files of a state file, open for appending.
#[derive(Debug)]
pub struct Journal {
    segments: [Segment; 2],
    /// The segment appended to.
    current: usize,
    sync: Synchronous,
    /// The highest generation either file has had.
    generation: u64,
    /// Reused for encoding.
    buffer: Vec<u8>,
}

/// `records` (the tables' content, `None` if they hold none) with
/// `entries` applied over them in order: what tables and journal hold
/// together.
pub fn apply_over<'a>(
    records: Option<Records>,
    entries: impl IntoIterator<Item = &'a Entry>,
) -> Option<Records> {
    let mut entries = entries.into_iter().peekable();
    if entries.peek().is_none() {
        return records;
    }
    let mut mirror = records.as_ref().map(Mirror::of).unwrap_or_default();
    for entry in entries {
        mirror.apply(&entry.changes, entry.all);
    }
    Some(mirror.records())
}

/// The journal files of the state file `state`: beside the file a
/// symbolic link leads to, like SQLite's WAL and the lock (see
/// [`super::lock::real_path`]).
pub fn paths(state: &Path) -> [PathBuf; 2] {
    let real = super::lock::real_path(state);
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    [0, 1].map(|i| real.with_file_name(format!("{name}.changes-{i}")))
}

impl Journal {
    /// Opens (creating if need be) the journal files of `state` and reads
    /// what they hold. Call [`Journal::clear`] once that is safely in
    /// SQLite, or [`Journal::keep`], before the first [`Journal::append`].
    pub fn open(state: &Path, sync: Synchronous) -> std::io::Result<(Journal, Recovered)> {
        let [a, b] = paths(state);
        let mut segments = [Segment::open(a)?, Segment::open(b)?];
        let mut recovered = Recovered::default();
        let mut generation = 0;
        for segment in &mut segments {
            let mut bytes = Vec::new();
            (&segment.file).read_to_end(&mut bytes)?;
            let parsed = parse(&bytes);
            if let Some(damage) = parsed.damage {
                recovered.damaged.push((segment.path.clone(), damage));
            }
            generation = generation.max(parsed.generation);
            // Where appending would carry on (see `Journal::keep`).
            segment.end = parsed.end as u64;
            segment.generation = parsed.generation;
            segment.last_seq = parsed.entries.last().map_or(0, |e| e.seq);
            recovered.entries.extend(parsed.entries);
        }
        recovered.entries.sort_by_key(|e| e.seq);
        Ok((
            Journal {
                segments,
                current: 0,
                sync,
                generation,
                buffer: Vec::with_capacity(4096),
            },
            recovered,
        ))
    }

    /// What the journal files of `state` hold, read without opening them
    /// for writing (a missing file holds nothing): for tools that look at
    /// a state file a server is using (see [`super::snapshot`]).
    pub fn read_only(state: &Path) -> std::io::Result<Recovered> {
        let mut recovered = Recovered::default();
        for path in paths(state) {
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let parsed = parse(&bytes);
            if let Some(damage) = parsed.damage {
                recovered.damaged.push((path, damage));
            }
            recovered.entries.extend(parsed.entries);
        }
        recovered.entries.sort_by_key(|e| e.seq);
        Ok(recovered)
    }

    /// Keeps what the files hold (the tables could not take it at
    /// start-up): appending carries on after the last valid frame of the
    /// file with the newest entries (overwriting whatever follows it), and
    /// a file without entries is emptied. The applier empties the others
    /// once the tables hold their entries.
    pub fn keep(&mut self) -> std::io::Result<()> {
        for segment in &mut self.segments {
            if segment.last_seq == 0 {
                self.generation += 1;
                segment.clear(self.generation)?;
            }
        }
        self.current = usize::from(self.segments[1].last_seq > self.segments[0].last_seq);
        Ok(())
    }

    /// Empties both files.
    pub fn clear(&mut self) -> std::io::Result<()> {
        for segment in &mut self.segments {
            self.generation += 1;
            segment.clear(self.generation)?;
        }
        if self.sync == Synchronous::Full {
            for segment in &self.segments {
                segment.file.sync_data()?;
            }
        }
        self.current = 0;
        Ok(())
    }

    /// Appends change sets `(seq, changes, all)` in one write (and, with
    /// `synchronous = FULL`, one flush). On failure nothing of them counts:
    /// the file is cut back to where they began, and the next append
    /// writes over whatever could not be cut.
    pub fn append(&mut self, sets: &[(u64, &RecordChanges, bool)]) -> std::io::Result<()> {
        self.buffer.clear();
        for (seq, changes, all) in sets {
            let start = self.buffer.len();
            self.buffer.extend_from_slice(&[0; FRAME_HEADER]);
            let entry = EntryRef {
                seq: *seq,
                all: *all,
                changes,
            };
            serde_json::to_writer(&mut self.buffer, &entry)?;
            let payload = &self.buffer[start + FRAME_HEADER..];
            // A longer payload would be read back as the end of the file:
            // refuse it here, so that it is never acknowledged.
            let length = u32::try_from(payload.len())
                .ok()
                .filter(|&l| l as usize <= MAX_PAYLOAD)
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "a change set of more than 1 GiB",
                    )
                })?;
            let crc = checksum(self.segments[self.current].generation, payload);
            self.buffer[start..start + 4].copy_from_slice(&length.to_le_bytes());
            self.buffer[start + 4..start + FRAME_HEADER].copy_from_slice(&crc.to_le_bytes());
        }
        let segment = &mut self.segments[self.current];
        let written = segment
            .file
            .write_all_at(&self.buffer, segment.end)
            .and_then(|()| match self.sync {
                Synchronous::Full => segment.file.sync_data(),
                Synchronous::Normal => Ok(()),
            });
        if let Err(e) = written {
            // Best effort: an incomplete frame left behind is ignored on
            // reading, and the next append overwrites it.
            let _ = segment.file.set_len(segment.end);
            return Err(e);
        }
        segment.end += self.buffer.len() as u64;
        if let Some((seq, _, _)) = sets.last() {
            segment.last_seq = segment.last_seq.max(*seq);
        }
        if self.buffer.capacity() > 1 << 20 {
            self.buffer = Vec::with_capacity(4096);
        }
        Ok(())
    }

    /// Makes the other file the one appended to, if it is empty; returns
    /// whether it did.
    pub fn switch(&mut self) -> bool {
        let other = 1 - self.current;
        if self.segments[other].last_seq != 0 {
            return false;
        }
        self.current = other;
        true
    }

    /// Empties the file not appended to if everything in it is numbered
    /// `applied` or lower (so is in SQLite).
    pub fn release_through(&mut self, applied: u64) -> std::io::Result<()> {
        let other = 1 - self.current;
        let segment = &mut self.segments[other];
        if segment.last_seq != 0 && segment.last_seq <= applied {
            self.generation += 1;
            segment.clear(self.generation)?;
        }
        Ok(())
    }

    /// The files' paths.
    pub fn paths(&self) -> [&Path; 2] {
        [&self.segments[0].path, &self.segments[1].path]
    }
}

/// What one file holds.
struct Parsed {
    generation: u64,
    entries: Vec<Entry>,
    /// Where the last valid frame ends (0 for a file without a header).
    end: usize,
    /// What was wrong, if something was.
    damage: Option<String>,
}

/// Reads one file's bytes.
fn parse(bytes: &[u8]) -> Parsed {
    let mut parsed = Parsed {
        generation: 0,
        entries: Vec::new(),
        end: 0,
        damage: None,
    };
    if bytes.is_empty() {
        return parsed;
    }
    if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC {
        parsed.damage = Some("not a journal file (wrong header)".to_owned());
        return parsed;
    }
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[MAGIC.len()..HEADER]);
    let generation = u64::from_le_bytes(word);
    parsed.generation = generation;
    let mut at = HEADER;
    parsed.end = HEADER;
    let mut last_seq = 0;
    loop {
        let payload = match frame(bytes, at, generation) {
            Frame::Valid(payload) => payload,
            Frame::End => break,
            Frame::Invalid(length) => {
                // Old frames never have a valid frame of this generation
                // after them; a damaged one may.
                let next = at + FRAME_HEADER + length;
                if matches!(frame(bytes, next, generation), Frame::Valid(_)) {
                    parsed.damage = Some(format!("the entry at byte {at} fails its checksum"));
                }
                break;
            }
        };
        match serde_json::from_slice::<Entry>(payload) {
            Ok(entry) if entry.seq > last_seq => {
                last_seq = entry.seq;
                parsed.entries.push(entry);
            }
            Ok(entry) => {
                parsed.damage = Some(format!(
                    "the entry at byte {at} is numbered {} after {last_seq}",
                    entry.seq
                ));
                break;
            }
            Err(e) => {
                parsed.damage = Some(format!("the entry at byte {at} cannot be read: {e}"));
                break;
            }
        }
        at += FRAME_HEADER + payload.len();
        parsed.end = at;
    }
    parsed
}

/// A frame as found.
enum Frame<'a> {
    /// Its payload passes the checksum of the file's generation.
    Valid(&'a [u8]),
    /// Complete, with this payload length, but failing the checksum.
    Invalid(usize),
    /// Nothing (more) there: the end of the bytes, a zero length, or a
    /// frame running past the end.
    End,
}

/// The frame at byte `at`.
fn frame(bytes: &[u8], at: usize, generation: u64) -> Frame<'_> {
    if bytes.len().saturating_sub(at) < FRAME_HEADER {
        return Frame::End;
    }
    let word = |i: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&bytes[i..i + 4]);
        u32::from_le_bytes(w)
    };
    let length = word(at) as usize;
    let crc = word(at + 4);
    let start = at + FRAME_HEADER;
    if length == 0 || length > MAX_PAYLOAD || bytes.len() - start < length {
        return Frame::End;
    }
    let payload = &bytes[start..start + length];
    if checksum(generation, payload) == crc {
        Frame::Valid(payload)
    } else {
        Frame::Invalid(length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("spalloc-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        dir.join("state.sqlite")
    }

    fn changes(next: u64) -> RecordChanges {
        RecordChanges {
            next_job_id: next,
            retired: vec![(next, next, Some(format!("job {next}")))],
            ..RecordChanges::default()
        }
    }

    fn journal(path: &Path) -> Journal {
        let (mut journal, recovered) = Journal::open(path, Synchronous::Normal).expect("open");
        assert!(recovered.entries.is_empty() && recovered.damaged.is_empty());
        journal.clear().expect("clear");
        journal
    }

    #[test]
    fn what_is_appended_is_read_back_in_order_across_both_files() {
        let path = temp("order");
        let mut j = journal(&path);
        let (a, b, c) = (changes(1), changes(2), changes(3));
        j.append(&[(1, &a, true), (2, &b, false)]).expect("append");
        assert!(j.switch());
        j.append(&[(3, &c, false)]).expect("append");
        drop(j);
        let (_, recovered) = Journal::open(&path, Synchronous::Normal).expect("reopen");
        let got: Vec<_> = recovered
            .entries
            .iter()
            .map(|e| (e.seq, e.all, e.changes.clone()))
            .collect();
        assert_eq!(got, vec![(1, true, a), (2, false, b), (3, false, c)]);
        assert!(recovered.damaged.is_empty());
    }

    #[test]
    fn the_file_in_use_is_never_switched_away_from_while_the_other_holds_entries() {
        let path = temp("switch");
        let mut j = journal(&path);
        j.append(&[(1, &changes(1), false)]).expect("append");
        assert!(j.switch()); // the other file was empty
        j.append(&[(2, &changes(2), false)]).expect("append");
        assert!(!j.switch(), "file 0 still holds entry 1");
        j.release_through(0).expect("release");
        assert!(!j.switch(), "entry 1 is not applied yet");
        j.release_through(1).expect("release");
        assert!(j.switch(), "file 0 was emptied");
        drop(j);
        let (_, recovered) = Journal::open(&path, Synchronous::Normal).expect("reopen");
        let seqs: Vec<u64> = recovered.entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![2]);
    }

    #[test]
    fn an_emptied_file_written_over_by_a_shorter_generation_reads_back_only_the_new_entries() {
        let path = temp("reuse");
        let mut j = journal(&path);
        let long = RecordChanges {
            retired: (0..50).map(|i| (i, i, Some("x".repeat(40)))).collect(),
            ..changes(1)
        };
        j.append(&[(1, &long, false), (2, &long, false), (3, &long, false)])
            .expect("append");
        assert!(j.switch());
        j.release_through(3).expect("release");
        assert!(j.switch(), "back to file 0, emptied");
        j.append(&[(4, &changes(4), false)]).expect("append");
        let file = j.paths()[0].to_owned();
        let len = std::fs::metadata(&file).expect("meta").len();
        drop(j);
        let (_, recovered) = Journal::open(&path, Synchronous::Normal).expect("reopen");
        let seqs: Vec<u64> = recovered.entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![4]);
        assert!(recovered.damaged.is_empty(), "{:?}", recovered.damaged);
        assert!(len > 3 * 1000, "the file kept its old blocks: {len}");
    }

    #[test]
    fn an_incomplete_last_entry_is_ignored_without_calling_it_damage() {
        let path = temp("torn");
        let mut j = journal(&path);
        j.append(&[(1, &changes(1), false), (2, &changes(2), false)])
            .expect("append");
        let file = j.paths()[0].to_owned();
        drop(j);
        let len = std::fs::metadata(&file).expect("meta").len();
        OpenOptions::new()
            .write(true)
            .open(&file)
            .and_then(|f| f.set_len(len - 3))
            .expect("cut");
        let (_, recovered) = Journal::open(&path, Synchronous::Normal).expect("reopen");
        let seqs: Vec<u64> = recovered.entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![1]);
        assert!(recovered.damaged.is_empty(), "{:?}", recovered.damaged);
    }

    #[test]
    fn a_damaged_entry_keeps_the_entries_before_it_and_is_reported() {
        let path = temp("damaged");
        let mut j = journal(&path);
        j.append(&[(1, &changes(1), false)]).expect("append");
        j.append(&[(2, &changes(2), false)]).expect("append");
        j.append(&[(3, &changes(3), false)]).expect("append");
        let file = j.paths()[0].to_owned();
        drop(j);
        let mut bytes = std::fs::read(&file).expect("read");
        // Flip a byte inside the second entry's payload.
        let second = bytes
            .windows(8)
            .position(|w| w == b"\"seq\":2,")
            .expect("entry 2");
        bytes[second + 6] = b'7';
        std::fs::write(&file, &bytes).expect("write");
        let (_, recovered) = Journal::open(&path, Synchronous::Normal).expect("reopen");
        let seqs: Vec<u64> = recovered.entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![1]);
        assert_eq!(recovered.damaged.len(), 1);
        assert!(
            recovered.damaged[0].1.contains("checksum"),
            "{:?}",
            recovered.damaged
        );
    }

    #[test]
    fn a_file_that_is_not_a_journal_is_reported_and_nothing_is_taken_from_it() {
        let path = temp("foreign");
        drop(journal(&path));
        std::fs::write(
            paths(&path)[1].as_path(),
            b"hello, world, this is not it, at all",
        )
        .expect("write");
        let (_, recovered) = Journal::open(&path, Synchronous::Normal).expect("reopen");
        assert!(recovered.entries.is_empty());
        assert_eq!(recovered.damaged.len(), 1);
    }

    /// The bytes of a journal file holding entries 1..=`count` (entry `n`
    /// with `n * spread` bytes of reason, so frames differ in length), and
    /// where each frame ends.
    fn written(count: u64, spread: usize) -> (Vec<u8>, Vec<usize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static CASE: AtomicUsize = AtomicUsize::new(0);
        let path = temp(&format!("prop-{}", CASE.fetch_add(1, Ordering::Relaxed)));
        let mut j = journal(&path);
        for n in 1..=count {
            let set = RecordChanges {
                retired: vec![(n, n, Some("r".repeat(n as usize * spread)))],
                ..changes(n)
            };
            j.append(&[(n, &set, false)]).expect("append");
        }
        let file = j.paths()[0].to_owned();
        drop(j);
        let bytes = std::fs::read(&file).expect("read");
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
        let mut ends = Vec::new();
        let mut at = HEADER;
        while at + FRAME_HEADER <= bytes.len() {
            let mut word = [0u8; 4];
            word.copy_from_slice(&bytes[at..at + 4]);
            at += FRAME_HEADER + u32::from_le_bytes(word) as usize;
            ends.push(at);
        }
        assert_eq!(ends.len() as u64, count, "the frames as written");
        (bytes, ends)
    }

    fn seqs(parsed: &Parsed) -> Vec<u64> {
        parsed.entries.iter().map(|e| e.seq).collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]

        #[test]
        fn a_journal_cut_short_anywhere_reads_back_every_entry_written_whole_before_the_cut(
            count in 1u64..6,
            spread in 0usize..40,
            cut in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            let (bytes, ends) = written(count, spread);
            let cut = cut.index(bytes.len() + 1);
            let parsed = parse(&bytes[..cut]);
            let whole = ends.iter().filter(|&&end| end <= cut).count() as u64;
            proptest::prop_assert_eq!(seqs(&parsed), (1..=whole).collect::<Vec<_>>());
            if cut >= HEADER || cut == 0 {
                // A write cut short is not damage (a header cut short is:
                // the file is set aside, and it held nothing).
                proptest::prop_assert!(parsed.damage.is_none(), "{:?}", parsed.damage);
            }
        }

        #[test]
        fn a_journal_with_any_byte_changed_gives_back_only_entries_written_before_it(
            count in 1u64..6,
            spread in 0usize..40,
            at in proptest::prelude::any::<proptest::sample::Index>(),
            value in proptest::prelude::any::<u8>(),
        ) {
            let (mut bytes, ends) = written(count, spread);
            let at = at.index(bytes.len());
            let unchanged = bytes[at] == value;
            bytes[at] = value;
            let parsed = parse(&bytes);
            let got = seqs(&parsed);
            if unchanged {
                proptest::prop_assert_eq!(got, (1..=count).collect::<Vec<_>>());
                return Ok(());
            }
            // Never an entry that was not written, never out of order, and
            // nothing from the changed frame or after it.
            let frame = ends.iter().filter(|&&end| end <= at).count() as u64;
            proptest::prop_assert_eq!(&got, &(1..=got.len() as u64).collect::<Vec<_>>());
            proptest::prop_assert!(got.len() as u64 <= frame);
            let start = if frame == 0 { HEADER } else { ends[frame as usize - 1] };
            if at >= HEADER && at >= start + 4 {
                // The checksum or payload of frame `frame` changed, its
                // length did not: the frames before it are read back, and
                // it is called damage exactly when a frame follows it.
                proptest::prop_assert_eq!(got.len() as u64, frame);
                proptest::prop_assert_eq!(parsed.damage.is_some(), frame + 1 < count);
            }
        }

        #[test]
        fn any_bytes_at_all_are_read_without_a_panic_and_give_no_entry(
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            with_header in proptest::prelude::any::<bool>(),
        ) {
            let mut bytes = Vec::new();
            if with_header {
                bytes.extend_from_slice(MAGIC);
                bytes.extend_from_slice(&7u64.to_le_bytes());
            }
            bytes.extend_from_slice(&tail);
            let parsed = parse(&bytes);
            proptest::prop_assert!(parsed.end <= bytes.len());
            // Random frames pass a CRC-32 once in 2^32; none here does.
            proptest::prop_assert!(parsed.entries.is_empty());
        }
    }
}
