//! The long-running tools without a terminal: `--watch` appends one snapshot
//! per change, separated by a blank line, and SIGINT ends it with status 0
//! (reference §5.3–§5.5); SIGINT while `spalloc` waits destroys the job and
//! exits 4 (§5.2).

mod support;

use spalloc::{Allocation, JobState};
use support::process::Running;
use support::{wait_for_state, Fixture};

/// The snapshots appended so far, without their line ends: the output split
/// at the blank lines printed after each one.
fn snapshots(text: &str) -> Vec<&str> {
    text.split("\n\n")
        .map(|s| s.trim_end_matches('\n'))
        .filter(|s| !s.is_empty())
        .collect()
}

/// Checks what every watch run leaves: plain text, each snapshot starting
/// with `head`, and the blank line printed after the interrupted wait.
fn assert_clean_snapshots(text: &str, head: &str) {
    assert!(!text.contains('\x1b'), "no escapes in a pipe: {text:?}");
    assert!(text.ends_with("\n\n"), "blank line at the end: {text:?}");
    for snapshot in snapshots(text) {
        assert!(snapshot.starts_with(head), "{snapshot:?} in {text:?}");
    }
}

/// Piped `spalloc-ps --watch`: a new table when a job appears and when it goes; SIGINT exits 0.
#[test]
fn ps_watch_appends_a_snapshot_per_change_and_sigint_exits_0() {
    let fixture = Fixture::small();
    let client = fixture.client();
    // With no rows the columns are only as wide as their headings.
    let empty = "ID  State  Power  Boards  Machine  Created at  Keepalive  Owner (Host)";
    let mut ps = Running::piped(fixture.tool("spalloc-ps").arg("--watch"));
    let out = ps.stdout();
    assert_eq!(out.wait_for("Owner (Host)\n"), format!("{empty}\n"));

    let id = fixture.create_job(&client, Allocation::Boards(1), "watched");
    let row = format!(" {id}  ready  on          1  m1 ");
    let text = out.wait_until("a snapshot with the job ready", |text| {
        snapshots(text).iter().skip(1).any(|s| s.contains(&row))
    });
    let seen = snapshots(&text).len();
    assert!(seen >= 2, "{text:?}");

    client.destroy_job(id, None).expect("destroy_job");
    out.wait_until("a later snapshot without the job", |text| {
        snapshots(text).iter().skip(seen).any(|s| *s == empty)
    });

    ps.interrupt();
    assert_eq!(ps.wait_exit(), 0, "{}", ps.stderr_text());
    let text = ps.stdout().wait_for_end();
    assert_eq!(snapshots(&text).last(), Some(&empty), "{text:?}");
    assert_clean_snapshots(&text, "ID  State  Power");
    assert_eq!(ps.stderr().wait_for_end(), "");
}

/// Piped `spalloc-machine --watch`: a new summary when a job takes a board and when it frees it; SIGINT exits 0.
#[test]
fn machine_watch_appends_a_snapshot_per_change_and_sigint_exits_0() {
    let fixture = Fixture::small();
    let client = fixture.client();
    let header = "Name  Num boards  In-use  Jobs  Tags\n";
    let idle = format!("{header}m1             3       0     0  default");
    let busy = format!("{header}m1             3       1     1  default");
    let mut machine = Running::piped(fixture.tool("spalloc-machine").arg("--watch"));
    let out = machine.stdout();
    assert_eq!(out.wait_for("default\n"), format!("{idle}\n"));

    let id = fixture.create_job(&client, Allocation::Boards(1), "watched");
    let text = out.wait_until("a snapshot with the job", |text| {
        snapshots(text).iter().skip(1).any(|s| *s == busy)
    });
    let seen = snapshots(&text).len();
    client.destroy_job(id, None).expect("destroy_job");
    out.wait_until("a later snapshot without the job", |text| {
        snapshots(text).iter().skip(seen).any(|s| *s == idle)
    });

    machine.interrupt();
    assert_eq!(machine.wait_exit(), 0, "{}", machine.stderr_text());
    let text = machine.stdout().wait_for_end();
    assert_clean_snapshots(&text, header);
    assert_eq!(machine.stderr().wait_for_end(), "");
}

/// Piped `spalloc-machine NAME --watch`: a new map and key per change; SIGINT exits 0.
#[test]
fn machine_watch_of_one_machine_appends_its_map_per_change() {
    let fixture = Fixture::small();
    let client = fixture.client();
    let mut machine = Running::piped(fixture.tool("spalloc-machine").args(["m1", "--watch"]));
    let out = machine.stdout();
    out.wait_for("  Jobs: 0\n");
    let id = fixture.create_job(&client, Allocation::Boards(1), "watched");
    out.wait_until("a snapshot with the job's key", |text| {
        last_machine_snapshot(text).is_some_and(|last| {
            last.contains("In-use: 1 of 3\n  Jobs: 1\n")
                && last.trim_end().ends_with(&format!("\n\nA:{id}"))
        })
    });
    client.destroy_job(id, None).expect("destroy_job");
    let text = out.wait_until("a later snapshot without the job", |text| {
        text.matches("  Name: m1\n").count() >= 3
            && last_machine_snapshot(text)
                .is_some_and(|last| last.contains("In-use: 0 of 3\n  Jobs: 0\n"))
    });
    assert!(!text.contains('\x1b'), "{text:?}");
    machine.interrupt();
    assert_eq!(machine.wait_exit(), 0, "{}", machine.stderr_text());
    assert!(machine.stdout().wait_for_end().ends_with("\n\n"));
}

/// The last snapshot of `spalloc-machine m1` in `text` (they contain blank
/// lines, so they are found by their first line, `  Name: m1`).
fn last_machine_snapshot(text: &str) -> Option<&str> {
    text.rfind("  Name: m1\n").map(|start| &text[start..])
}

/// Piped `spalloc-job ID --watch`: new info on power-off and on destruction,
/// after which it ends by itself with 0 (a destroyed job will not change again).
#[test]
fn job_watch_appends_a_snapshot_per_change_and_ends_once_the_job_is_destroyed() {
    let fixture = Fixture::small();
    let client = fixture.client();
    let id = fixture.create_job(&client, Allocation::Boards(1), "watched");
    wait_for_state(&client, id, JobState::Ready);
    let mut job = Running::piped(
        fixture
            .tool("spalloc-job")
            .args([id.to_string().as_str(), "--watch"]),
    );
    let out = job.stdout();
    let text = out.wait_for("Running on: m1\n");
    assert!(text.contains("Board power: on\n"), "{text:?}");
    assert_eq!(snapshots(&text).len(), 1, "{text:?}");

    client.power_off_job_boards(id).expect("power off");
    let text = out.wait_until("a snapshot with the power off", |text| {
        snapshots(text)
            .iter()
            .skip(1)
            .any(|s| s.contains("State: ready\n") && s.contains("Board power: off\n"))
    });
    let seen = snapshots(&text).len();
    client
        .destroy_job(id, Some("seen enough"))
        .expect("destroy_job");
    let gone = format!("Job ID: {id}\n State: destroyed\nReason: seen enough");
    out.wait_until("a later snapshot of the destroyed job", |text| {
        snapshots(text).iter().skip(seen).any(|s| *s == gone)
    });

    assert_eq!(job.wait_exit(), 0, "{}", job.stderr_text());
    let text = job.stdout().wait_for_end();
    assert!(!text.contains('\x1b'), "{text:?}");
    assert!(text.ends_with(&format!("\n{gone}\n")), "{text:?}");
    for snapshot in snapshots(&text) {
        let head = snapshot.trim_start();
        assert!(head.starts_with(&format!("Job ID: {id}\n")), "{text:?}");
    }
    assert_eq!(job.stderr().wait_for_end(), "");
}

/// SIGINT while `spalloc` waits with stderr piped: plain lines, exit 4, job destroyed.
#[test]
fn sigint_while_spalloc_waits_without_a_terminal_destroys_the_job() {
    let fixture = Fixture::small();
    let client = fixture.client();
    fixture.fill_machine(&client);
    let mut spalloc = Running::piped(fixture.tool("spalloc").args(["--owner", "me", "1"]));
    let text = spalloc.stderr().wait_for("Waiting in queue...\n");
    let id: u64 = text
        .strip_prefix("Job ")
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .expect("Job N: on stderr");
    spalloc.interrupt();
    assert_eq!(spalloc.wait_exit(), 4, "{}", spalloc.stderr_text());
    assert_eq!(
        spalloc.stderr().wait_for_end(),
        format!("Job {id}: Waiting in queue...\nJob {id}: Keyboard interrupt.\n")
    );
    assert_eq!(spalloc.stdout().wait_for_end(), "");
    let record = client.get_job_state(id).expect("get_job_state");
    assert_eq!(record.state, JobState::Destroyed);
    // spalloc sends the reason "Keyboard interrupt."; the server records a
    // queued job's destruction as a cancellation, as the reference does.
    assert_eq!(
        record.reason.as_deref(),
        Some("Cancelled: Keyboard interrupt.")
    );
}
