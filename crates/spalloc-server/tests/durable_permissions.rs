//! Permission and space faults on the state file, on the real binary run
//! as a user that file permissions apply to ([`ServerUser`]: `nobody` via
//! `setpriv` when the tests run as root).
//!
//! A file the server cannot write or read, or a directory where it cannot
//! create what it needs, refuses start-up with a message naming the file
//! and the reason; it is never taken for corruption, nothing is moved
//! aside or changed, and once the permission is mended the server carries
//! on from the saved jobs and the next job ID. Permissions taken away, a
//! file-size limit or a full filesystem while the server runs: each change
//! is either acknowledged or refused with a clear exception, reads keep
//! working, the next change after the fault is mended succeeds with no
//! restart, and no acknowledged job is lost to `kill -9`.

mod common;

use common::server_process::{write_config, Refusal, ServerProcess};
use common::server_user::{remove_dir, set_mode, ServerUser};
use common::Client;
use serde_json::json;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

const DESTROYED: u64 = 4;

/// A test's directory: the configuration, and a directory of its own for
/// the state file (so that taking permissions away from it leaves the
/// configuration readable).
struct Setup {
    dir: PathBuf,
    config: PathBuf,
    state_dir: PathBuf,
    state: PathBuf,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let user = ServerUser::get();
        let dir = user.dir(name);
        let config = write_config(&dir);
        let state_dir = dir.join("state");
        std::fs::create_dir(&state_dir).expect("state dir");
        set_mode(&state_dir, 0o755);
        user.give(&state_dir);
        let state = state_dir.join("state.sqlite");
        Setup {
            dir,
            config,
            state_dir,
            state,
        }
    }

    /// `spalloc-server CONFIG --state FILE` as the server's user.
    fn command(&self) -> Command {
        let mut command = ServerUser::get().command();
        command.arg(&self.config).arg("--state").arg(&self.state);
        command
    }

    fn start(&self) -> ServerProcess {
        ServerProcess::spawn(self.command())
    }

    fn start_or_refusal(&self) -> Result<ServerProcess, Refusal> {
        ServerProcess::start_or_refusal(self.command())
    }

    /// Starts the server, expecting it to refuse.
    fn refusal(&self) -> Refusal {
        match self.start_or_refusal() {
            Ok(server) => panic!(
                "the server started (listening on {}) where it must refuse",
                server.address
            ),
            Err(refusal) => refusal,
        }
    }

    /// Starts the server, expecting it to refuse for a permission naming
    /// `named`, and to leave every file of the state directory as it was;
    /// returns the refusal.
    fn refusal_leaving_all_as_it_was(&self, named: &Path) -> Refusal {
        let before = snapshot(&self.state_dir);
        let refusal = self.refusal();
        assert_refused(&refusal, named, "Permission denied");
        assert_eq!(
            snapshot(&self.state_dir),
            before,
            "nothing is moved aside or changed"
        );
        refusal
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        remove_dir(&self.dir);
    }
}

/// A refused start-up: a failure exit, a message naming `named` and giving
/// `reason`, and no word of damage (a permission fault is not corruption).
fn assert_refused(refusal: &Refusal, named: &Path, reason: &str) {
    let log = &refusal.log;
    assert!(!refusal.status.success(), "{refusal:?}");
    assert!(
        log.contains(&named.display().to_string()) && log.contains(reason),
        "the refusal names {} and says {reason:?}: {log}",
        named.display()
    );
    for word in ["damaged", "corrupt", "not a database", "cold start"] {
        assert!(!log.contains(word), "{word:?} in {log}");
    }
}

/// Each file in `dir`: its mode, size, modification time and content
/// (`None` where the tests' user cannot read it).
type Snapshot = BTreeMap<String, (u32, u64, i64, i64, Option<Vec<u8>>)>;

fn snapshot(dir: &Path) -> Snapshot {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| {
            let entry = entry.expect("entry");
            let meta = entry.metadata().expect("metadata");
            (
                entry.file_name().to_string_lossy().into_owned(),
                (
                    meta.permissions().mode(),
                    meta.len(),
                    meta.mtime(),
                    meta.mtime_nsec(),
                    std::fs::read(entry.path()).ok(),
                ),
            )
        })
        .collect()
}

/// The jobs a test made: the ones that must be live, the ones destroyed,
/// and the highest ID handed out.
#[derive(Debug, Default)]
struct Jobs {
    live: Vec<u64>,
    destroyed: Vec<u64>,
    highest: u64,
}

impl Jobs {
    fn create(&mut self, c: &mut Client) -> u64 {
        let id = c.create(json!([]), json!({"owner": "perm", "keepalive": null}));
        assert!(id > self.highest, "job ID {id} after {}", self.highest);
        self.highest = id;
        self.live.push(id);
        id
    }

    /// Two jobs, one of them destroyed, on a server that is then stopped
    /// (`clean`: by SIGTERM, else by `kill -9`).
    fn made_on(setup: &Setup, clean: bool) -> Jobs {
        let server = setup.start();
        let mut c = server.client();
        let mut jobs = Jobs::default();
        let gone = jobs.create(&mut c);
        jobs.create(&mut c);
        c.ok("destroy_job", json!([gone, "done"]), json!({}));
        jobs.live.retain(|id| *id != gone);
        jobs.destroyed.push(gone);
        if clean {
            server.stop();
        } else {
            server.kill9();
        }
        jobs
    }

    /// The live jobs are listed, the destroyed ones are destroyed, and the
    /// next job created gets the next ID (so IDs did not restart).
    fn carry_on(&mut self, server: &ServerProcess) {
        let mut c = server.client();
        assert_eq!(live_ids(&mut c), self.live, "the saved jobs");
        for id in &self.destroyed {
            assert_eq!(c.state(*id)["state"], json!(DESTROYED), "job {id}");
        }
        let next = self.highest + 1;
        assert_eq!(self.create(&mut c), next, "the next job ID");
    }
}

fn live_ids(c: &mut Client) -> Vec<u64> {
    c.ok("list_jobs", json!([]), json!({}))
        .as_array()
        .expect("a list")
        .iter()
        .map(|j| j["job_id"].as_u64().expect("job id"))
        .collect()
}

/// Ways to keep the server's user from writing a file it could write.
#[derive(Debug, Clone, Copy)]
enum NoWrite {
    /// `chmod 0444`.
    ReadOnlyMode,
    /// Owned by root, mode 0644 (only when the tests run as root).
    OwnedByRoot,
}

impl NoWrite {
    fn take(self, file: &Path) {
        match self {
            NoWrite::ReadOnlyMode => set_mode(file, 0o444),
            NoWrite::OwnedByRoot => {
                std::os::unix::fs::chown(file, Some(0), Some(0)).expect("chown root")
            }
        }
    }

    fn mend(self, file: &Path) {
        match self {
            NoWrite::ReadOnlyMode => set_mode(file, 0o644),
            NoWrite::OwnedByRoot => ServerUser::get().give(file),
        }
    }
}

#[test]
fn a_state_file_the_server_cannot_write_refuses_start_up_naming_it_and_is_left_as_it_was() {
    let user = ServerUser::get();
    let setup = Setup::new("unwritable");
    // Stopped cleanly, the server leaves an empty WAL beside the file, to
    // which SQLite would give the read-only file's permissions: the first
    // start after the permission is mended would be refused too.
    let mut jobs = Jobs::made_on(&setup, true);
    let mut faults = vec![NoWrite::ReadOnlyMode];
    if user.is_another_user() {
        faults.push(NoWrite::OwnedByRoot);
    }
    for fault in faults {
        fault.take(&setup.state);
        setup.refusal_leaving_all_as_it_was(&setup.state);
        fault.mend(&setup.state);
        let server = setup.start();
        jobs.carry_on(&server);
        server.stop();
    }
}

#[test]
fn a_state_file_the_server_cannot_read_refuses_start_up_and_job_ids_carry_on_once_it_can() {
    let setup = Setup::new("unreadable");
    let mut jobs = Jobs::made_on(&setup, false);
    set_mode(&setup.state, 0o000);
    setup.refusal_leaving_all_as_it_was(&setup.state);
    set_mode(&setup.state, 0o644);
    let server = setup.start();
    jobs.carry_on(&server);
    server.kill9();
}

#[test]
fn a_read_only_directory_without_a_state_file_refuses_start_up_instead_of_running_without_state() {
    let setup = Setup::new("readonly-dir");
    set_mode(&setup.state_dir, 0o555);
    let refusal = setup.refusal();
    assert_refused(&refusal, &setup.state_dir, "Permission denied");
    assert!(refusal.log.contains("state.sqlite"), "{}", refusal.log);
    assert_eq!(snapshot(&setup.state_dir), Snapshot::new(), "nothing made");
    // Once the directory is writable, the state is durable.
    set_mode(&setup.state_dir, 0o755);
    let mut jobs = Jobs::default();
    let server = setup.start();
    jobs.create(&mut server.client());
    server.kill9();
    let server = setup.start();
    jobs.carry_on(&server);
    server.kill9();
}

#[test]
fn a_read_only_directory_holding_the_state_file_keeps_durable_state_or_refuses_with_the_reason() {
    let setup = Setup::new("readonly-dir-file");
    // Killed: the file, its WAL, its shared-memory index and the lock file
    // are all there, and writable, so SQLite has nothing to create.
    let mut jobs = Jobs::made_on(&setup, false);
    set_mode(&setup.state_dir, 0o555);
    match setup.start_or_refusal() {
        Ok(server) => {
            jobs.carry_on(&server);
            server.kill9();
            let server = setup.start();
            jobs.carry_on(&server);
            server.kill9();
        }
        Err(refusal) => assert_refused(&refusal, &setup.state_dir, "Permission denied"),
    }
    // Without the files SQLite makes beside the state file (the
    // shared-memory index is rebuilt from the WAL when missing), and the
    // lock file: it cannot make them, and says so.
    set_mode(&setup.state_dir, 0o755);
    for name in ["state.sqlite-shm", "state.sqlite.lock"] {
        std::fs::remove_file(setup.state_dir.join(name)).expect("remove");
    }
    set_mode(&setup.state_dir, 0o555);
    let refusal = setup.refusal_leaving_all_as_it_was(&setup.state_dir);
    assert!(refusal.log.contains("state.sqlite-shm"), "{}", refusal.log);
    set_mode(&setup.state_dir, 0o755);
    let server = setup.start();
    jobs.carry_on(&server);
    server.kill9();
}

/// Creates a job, as large as a request may make it (the longest owner,
/// arguments padded to nearly their bound): its ID, or the exception.
fn create_large(c: &mut Client) -> Result<u64, String> {
    let owner = "x".repeat(256);
    let padded_ratio = format!("{}0.5", " ".repeat(1800));
    let kwargs = json!({"owner": owner, "keepalive": null, "min_ratio": padded_ratio});
    c.call("create_job", json!([]), kwargs)
        .map(|id| id.as_u64().expect("job id"))
}

/// Creates jobs while a fault is on: each is either acknowledged (into
/// `acknowledged`) or refused with an exception saying it was not saved.
/// Returns how many were refused; stops at the first refusal if
/// `until_refused`. Reads keep working throughout.
fn create_under_fault(
    c: &mut Client,
    acknowledged: &mut Vec<u64>,
    attempts: usize,
    until_refused: bool,
) -> usize {
    let mut refused = 0;
    for _ in 0..attempts {
        match create_large(c) {
            Ok(id) => acknowledged.push(id),
            Err(e) => {
                assert!(e.contains("could not save"), "a clear exception: {e}");
                refused += 1;
                if until_refused {
                    break;
                }
            }
        }
        assert_eq!(
            &live_ids(c),
            acknowledged,
            "reads work and show no refused job"
        );
    }
    if let Some(id) = acknowledged.last() {
        assert_ne!(c.state(*id)["state"], json!(0), "get_job_state works");
    }
    refused
}

/// After the fault is mended, the next change succeeds with no restart,
/// and every acknowledged job survives `kill -9`.
fn recovers_and_loses_nothing(setup: &Setup, server: ServerProcess, acknowledged: &mut Vec<u64>) {
    let mut c = server.client();
    let id = create_large(&mut c).unwrap_or_else(|e| panic!("refused after mending: {e}"));
    acknowledged.push(id);
    server.kill9();
    let server = setup.start();
    assert_eq!(
        &live_ids(&mut server.client()),
        acknowledged,
        "0 acknowledged jobs lost"
    );
    server.kill9();
}

#[test]
fn permissions_taken_away_while_the_server_runs_never_lose_an_acknowledged_job() {
    // An open file keeps the write permission it was opened with, so the
    // server may well carry on; whatever it acknowledges must be saved.
    let setup = Setup::new("chmod-running");
    let server = setup.start();
    let mut c = server.client();
    let mut acknowledged = vec![create_large(&mut c).expect("first job")];
    let take = || {
        set_mode(&setup.state, 0o444);
        set_mode(&setup.state_dir, 0o555);
    };
    let mend = || {
        set_mode(&setup.state_dir, 0o755);
        set_mode(&setup.state, 0o644);
    };
    take();
    let refused = create_under_fault(&mut c, &mut acknowledged, 20, false);
    println!(
        "permissions taken away while running: {} acknowledged, {refused} refused",
        acknowledged.len() - 1
    );
    mend();
    let id = create_large(&mut c).unwrap_or_else(|e| panic!("refused after mending: {e}"));
    acknowledged.push(id);
    // Killed with the permission gone again: the restart is refused...
    take();
    server.kill9();
    let refusal = setup.refusal();
    assert_refused(&refusal, &setup.state, "Permission denied");
    // ...until it is mended, and then nothing acknowledged is missing.
    mend();
    let server = setup.start();
    assert_eq!(
        live_ids(&mut server.client()),
        acknowledged,
        "0 acknowledged jobs lost"
    );
    recovers_and_loses_nothing(&setup, server, &mut acknowledged);
}

/// Lifts a file-size limit off the running server, as its own user (who
/// may raise a soft limit; root could too, but only with CAP_SYS_RESOURCE,
/// which a container may not grant).
fn lift_file_size_limit(server: &ServerProcess) {
    let status = ServerUser::get()
        .run(Path::new("prlimit"))
        .arg(format!("--pid={}", server.child.id()))
        .arg("--fsize=unlimited")
        .status()
        .expect("run util-linux's prlimit");
    assert!(status.success(), "prlimit: {status}");
}

/// The server under a file-size limit (SIGXFSZ ignored, so that it sees
/// EFBIG instead of dying); a soft limit, which its user may lift.
fn start_with_file_size_limit(setup: &Setup) -> ServerProcess {
    let prelude = "trap '' XFSZ; ulimit -S -f 200";
    ServerProcess::spawn(ServerUser::in_shell(&setup.command(), prelude))
}

#[test]
fn a_change_refused_under_a_file_size_limit_succeeds_by_itself_once_the_limit_is_lifted() {
    let setup = Setup::new("fsize");
    let server = start_with_file_size_limit(&setup);
    let mut c = server.client();
    let mut acknowledged = Vec::new();
    let refused = create_under_fault(&mut c, &mut acknowledged, 400, true);
    assert_eq!(refused, 1, "the limit refused a change");
    println!(
        "file-size limit: {} jobs acknowledged before a change was refused",
        acknowledged.len()
    );
    lift_file_size_limit(&server);
    recovers_and_loses_nothing(&setup, server, &mut acknowledged);
}

/// A small tmpfs mounted over a directory, unmounted when dropped.
struct SmallFilesystem {
    dir: PathBuf,
}

impl SmallFilesystem {
    /// Mounts one of `size` (such as `300k`) over `dir`, or says why not.
    fn mount(dir: &Path, size: &str) -> Result<SmallFilesystem, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size},mode=0755"))
            .arg("tmpfs")
            .arg(dir)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(SmallFilesystem {
            dir: dir.to_owned(),
        })
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

#[test]
fn a_full_filesystem_refuses_changes_keeps_reads_and_recovers_by_itself_once_space_is_freed() {
    let user = ServerUser::get();
    let setup = Setup::new("full");
    let mounted = if user.is_another_user() {
        SmallFilesystem::mount(&setup.state_dir, "300k")
    } else {
        Err("only root may mount a filesystem".to_owned())
    };
    let small = match mounted {
        Ok(small) => small,
        Err(why) => {
            // The same refusal and recovery under the other real fault.
            eprintln!("no small filesystem ({why}): a file-size limit stands in for the full disk");
            let server = start_with_file_size_limit(&setup);
            let mut acknowledged = Vec::new();
            let refused = create_under_fault(&mut server.client(), &mut acknowledged, 400, true);
            assert_eq!(refused, 1, "the limit refused a change");
            lift_file_size_limit(&server);
            recovers_and_loses_nothing(&setup, server, &mut acknowledged);
            return;
        }
    };
    user.give(&setup.state_dir);
    // Space to free later, taken by the tests' user.
    let filler = setup.state_dir.join("filler");
    std::fs::write(&filler, vec![0u8; 64 << 10]).expect("filler");
    let server = setup.start();
    let mut c = server.client();
    let mut acknowledged = Vec::new();
    let refused = create_under_fault(&mut c, &mut acknowledged, 2000, true);
    assert_eq!(refused, 1, "the full filesystem refused a change");
    println!(
        "full filesystem: {} jobs acknowledged before a change was refused",
        acknowledged.len()
    );
    // A crash and a restart while the disk is still full: what the change
    // journal holds cannot go into the tables, so the server starts from
    // both together, with every acknowledged job, and reads work.
    server.kill9();
    let server = setup.start();
    let mut c = server.client();
    assert_eq!(
        &live_ids(&mut c),
        &acknowledged,
        "a restart on a full disk keeps every acknowledged job"
    );
    std::fs::remove_file(&filler).expect("free space");
    recovers_and_loses_nothing(&setup, server, &mut acknowledged);
    drop(small);
}

/// What an operator reads: one line saying which file, why, and what to do.
#[test]
fn a_refused_start_up_says_in_one_line_which_file_why_and_what_to_do() {
    let setup = Setup::new("message");
    Jobs::made_on(&setup, false);
    set_mode(&setup.state, 0o000);
    let refusal = setup.refusal();
    let message: Vec<&str> = refusal
        .log
        .lines()
        .filter(|l| l.starts_with("spalloc-server:"))
        .collect();
    assert_eq!(message.len(), 1, "one message: {}", refusal.log);
    println!("{}", message[0]);
    for part in ["cannot read and write", "Permission denied", "--no-state"] {
        assert!(message[0].contains(part), "{part:?} in {}", message[0]);
    }
    assert_eq!(refusal.status.code(), Some(2));
}
