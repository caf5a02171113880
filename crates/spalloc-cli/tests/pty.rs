//! The tools on a pseudo-terminal, as a person at a shell sees them: colours
//! (and `NO_COLOR`), `spalloc`'s live status line while queued, Ctrl-C while
//! `spalloc` waits, and the `--watch` repaints (reference §5.6, §5.2).

mod support;

use spalloc::{Allocation, JobState};
use support::process::{OnTerminal, Running};
use support::{run, wait_for_state, Fixture};

/// The reference's screen clear (`ESC[2J ESC[;H`), written before each `--watch` repaint.
const CLEAR_SCREEN: &str = "\x1b[2J\x1b[;H";
/// Ctrl-C, typed on the terminal.
const CTRL_C: &[u8] = b"\x03";

/// The ANSI codes of `spalloc-machine`'s colour for job `id` (the reference's
/// `job_colours[id % 15]`: green, blue, magenta, yellow, cyan, then dim, then bright).
fn job_colour_codes(id: u64) -> &'static str {
    const CODES: [&str; 15] = [
        "32", "34", "35", "33", "36", "2;32", "2;34", "2;35", "2;33", "2;36", "1;32", "1;34",
        "1;35", "1;33", "1;36",
    ];
    let index = usize::try_from(id % 15).unwrap_or(0);
    CODES[index]
}

/// The job number in the first `Job N: ` of `text`.
fn job_id_in(text: &str) -> u64 {
    let start = text.find("Job ").expect("a `Job N:` line") + "Job ".len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().expect("a job number")
}

/// What the screen shows after the last `--watch` clear (the current repaint).
fn last_repaint(text: &str) -> &str {
    text.rsplit(CLEAR_SCREEN).next().unwrap_or_default()
}

/// Runs `command` on a terminal (all three streams) to the end; returns
/// (exit status, what the terminal showed).
fn run_on_terminal(command: &mut std::process::Command) -> (i32, String) {
    let mut tool = Running::on_terminal(command, OnTerminal::ALL);
    let code = tool.wait_exit();
    (code, tool.screen().wait_for_end())
}

/// Colours on a terminal (machine map and key, table headers, ps states, job map); none with `NO_COLOR` or on pipes; ps colours follow stderr.
#[test]
fn colours_on_a_terminal_never_with_no_color_or_pipes() {
    let fixture = Fixture::small();
    let client = fixture.client();
    let id = fixture.fill_machine(&client);
    let colour = job_colour_codes(id);
    let id_text = id.to_string();

    // On a terminal: the machine map's job letters and key, ps's header and
    // states, the job's allocation map.
    let (code, screen) = run_on_terminal(fixture.tool("spalloc-machine").arg("m1"));
    assert_eq!(code, 0, "{screen:?}");
    assert!(
        screen.contains(&format!("\x1b[{colour}m A \x1b[0m")),
        "{screen:?}"
    );
    assert!(
        screen.contains(&format!("\x1b[{colour}mA\x1b[0m:{id}")),
        "{screen:?}"
    );
    let (code, screen) = run_on_terminal(&mut fixture.tool("spalloc-machine"));
    assert_eq!(code, 0, "{screen:?}");
    assert!(screen.starts_with("\x1b[4;1mName\x1b[0m"), "{screen:?}");
    let (code, screen) = run_on_terminal(&mut fixture.tool("spalloc-ps"));
    assert_eq!(code, 0, "{screen:?}");
    assert!(screen.starts_with("\x1b[4;1mID\x1b[0m"), "{screen:?}");
    assert!(screen.contains("\x1b[32mready\x1b[0m"), "{screen:?}");
    assert!(screen.contains("\x1b[32mon\x1b[0m"), "{screen:?}");
    let (code, screen) = run_on_terminal(fixture.tool("spalloc-job").arg(&id_text));
    assert_eq!(code, 0, "{screen:?}");
    assert!(screen.contains("\x1b[2m . \x1b[0m"), "{screen:?}");
    assert!(screen.contains("\x1b[1m___\x1b[0m"), "{screen:?}");

    // NO_COLOR (any non-empty value) turns every escape sequence off, even on
    // a terminal; the text itself is unchanged.
    for (tool, args, plain) in [
        ("spalloc-machine", vec!["m1"], format!("A:{id}")),
        ("spalloc-machine", vec![], "Name  Num boards".to_owned()),
        ("spalloc-ps", vec![], "  ready  on ".to_owned()),
        (
            "spalloc-job",
            vec![id_text.as_str()],
            "Allocation:".to_owned(),
        ),
    ] {
        let (code, screen) = run_on_terminal(fixture.tool(tool).args(&args).env("NO_COLOR", "1"));
        assert_eq!(code, 0, "{tool} {args:?}: {screen:?}");
        assert!(screen.contains(&plain), "{tool} {args:?}: {screen:?}");
        assert!(!screen.contains('\x1b'), "{tool} {args:?}: {screen:?}");
    }

    // Piped output never has colours.
    for (tool, args) in [
        ("spalloc-machine", vec!["m1"]),
        ("spalloc-machine", vec![]),
        ("spalloc-ps", vec![]),
        ("spalloc-job", vec![id_text.as_str()]),
    ] {
        let (code, out, err) = run(fixture.tool(tool).args(&args));
        assert_eq!(code, 0, "{tool} {args:?}: {err}");
        assert!(!out.is_empty(), "{tool} {args:?}");
        assert!(!out.contains('\x1b'), "{tool} {args:?}: {out:?}");
    }

    // spalloc-machine and spalloc-job colour by stdout: with stdout piped
    // and stderr on a terminal there are none.
    let only_stderr = OnTerminal {
        stdin: true,
        stdout: false,
        stderr: true,
    };
    for (tool, args) in [
        ("spalloc-machine", vec!["m1"]),
        ("spalloc-job", vec![id_text.as_str()]),
    ] {
        let mut running = Running::on_terminal(fixture.tool(tool).args(&args), only_stderr);
        assert_eq!(running.wait_exit(), 0, "{tool}");
        let out = running.stdout().wait_for_end();
        assert!(out.contains("m1"), "{tool}: {out:?}");
        assert!(!out.contains('\x1b'), "{tool}: {out:?}");
    }
    // spalloc-ps keeps the reference's quirk (§5.4, §8.12 [compat]): its
    // colours follow stderr, not stdout.
    let mut ps = Running::on_terminal(&mut fixture.tool("spalloc-ps"), only_stderr);
    assert_eq!(ps.wait_exit(), 0);
    let out = ps.stdout().wait_for_end();
    assert!(out.contains("\x1b[32mready\x1b[0m"), "{out:?}");
    let only_stdout = OnTerminal {
        stdin: true,
        stdout: true,
        stderr: false,
    };
    let mut ps = Running::on_terminal(&mut fixture.tool("spalloc-ps"), only_stdout);
    assert_eq!(ps.wait_exit(), 0);
    let screen = ps.screen().wait_for_end();
    assert!(screen.contains("  ready  on "), "{screen:?}");
    assert!(!screen.contains('\x1b'), "{screen:?}");
}

/// While queued, `spalloc` redraws one status line in place (save/restore cursor, clear line) with the elapsed time, the queued jobs ahead and what it waits for, then turns it into `Ready!`.
#[test]
fn spalloc_shows_a_live_status_line_while_queued() {
    let fixture = Fixture::small();
    let client = fixture.client();
    let filler = fixture.fill_machine(&client);
    let ahead = fixture.create_job(&client, Allocation::Boards(1), "ahead");
    wait_for_state(&client, ahead, JobState::Queued);

    // Wide enough for the wordiest form of the line.
    let mut spalloc = Running::on_terminal_sized(
        fixture
            .tool("spalloc")
            .args(["--owner", "me", "--keepalive", "5", "1"]),
        OnTerminal::ALL,
        200,
    );
    let screen = spalloc.screen();
    let text = screen.wait_for("Waiting in queue...");
    let id = job_id_in(&text);
    assert!(id > ahead, "{text:?}");
    // The first drawing saves the cursor; each redraw (once a second, with
    // the elapsed time) restores it and clears the line.
    let first = format!("\x1b7\x1b[33mJob {id}: Waiting in queue...\x1b[0m\x1b[2m (0:0");
    assert!(text.starts_with(&first), "{text:?}");
    let redraw = format!("\x1b8\x1b[K\x1b[33mJob {id}: Waiting in queue...\x1b[0m\x1b[2m (");
    let text = screen.wait_until("a redraw a second or more later", |text| {
        text.split(&redraw).skip(1).any(|rest| {
            // Then what it waits for: the server's reason, or (from servers
            // that give none) the boards in use, counted from the listings.
            let Some((clock, after)) = rest.split_once(" elapsed, 1 queued job ahead: ") else {
                return false;
            };
            if !after.contains(")\x1b[0m") {
                return false;
            }
            clock.len() == 4 && clock.starts_with("0:") && clock != "0:00"
        })
    });
    assert!(!text.contains('\n'), "redrawn in place: {text:?}");

    // Free the machine: the same line turns into Ready!, then the info block.
    client
        .destroy_job(filler, Some("make room"))
        .expect("destroy the filler");
    let text = screen.wait_for("<Press enter when done>\x1b[0m");
    let ready = format!("\x1b8\x1b[K\x1b[32mJob {id}: Ready!\x1b[0m\n");
    let (waiting, after) = text.split_once(&ready).expect("the Ready! line");
    assert!(!waiting.contains('\n'), "one status line: {waiting:?}");
    assert!(
        after.starts_with("  Hostname: \x1b[1m127.0.1."),
        "{after:?}"
    );
    assert!(
        after.ends_with("Running on: m1\n\x1b[2m<Press enter when done>\x1b[0m"),
        "{after:?}"
    );
    spalloc.type_keys(b"\r");
    assert_eq!(spalloc.wait_exit(), 0, "{:?}", spalloc.screen().text());
    let record = client.get_job_state(id).expect("get_job_state");
    assert_eq!(record.state, JobState::Destroyed);
    assert_eq!(record.reason, None);
}

/// Ctrl-C at `<Press enter when done>` ends the line, exits 0 and destroys the job.
#[test]
fn ctrl_c_at_the_prompt_ends_spalloc_with_0() {
    let fixture = Fixture::small();
    let client = fixture.client();
    let mut spalloc = Running::on_terminal(
        fixture.tool("spalloc").args(["--owner", "me", "1"]),
        OnTerminal::ALL,
    );
    let text = spalloc
        .screen()
        .wait_for("\x1b[2m<Press enter when done>\x1b[0m");
    let id = job_id_in(&text);
    spalloc.type_keys(CTRL_C);
    assert_eq!(spalloc.wait_exit(), 0, "{:?}", spalloc.screen().text());
    let text = spalloc.screen().wait_for_end();
    let after_prompt = text
        .rsplit("<Press enter when done>")
        .next()
        .unwrap_or_default();
    assert!(after_prompt.ends_with('\n'), "{text:?}");
    let record = client.get_job_state(id).expect("get_job_state");
    assert_eq!(record.state, JobState::Destroyed);
}

/// Ctrl-C while the `-c` command runs: `spalloc` survives, SIGTERMs the command and exits with its status.
#[test]
fn ctrl_c_while_the_command_runs_terminates_it() {
    let fixture = Fixture::small();
    let client = fixture.client();
    // The command ignores Ctrl-C itself; spalloc then ends it with SIGTERM
    // and exits with its status (256 - 15, as Python reports a signal).
    let mut spalloc = Running::on_terminal(
        fixture.tool("spalloc").args([
            "--owner",
            "me",
            "1",
            "-c",
            "sh",
            "-c",
            "trap '' INT; echo started {id}; exec sleep 60",
        ]),
        OnTerminal::ALL,
    );
    let text = spalloc.screen().wait_for("started ");
    let id = job_id_in(&text);
    spalloc.type_keys(CTRL_C);
    assert_eq!(spalloc.wait_exit(), 241, "{:?}", spalloc.screen().text());
    let record = client.get_job_state(id).expect("get_job_state");
    assert_eq!(record.state, JobState::Destroyed);
}

/// Ctrl-C while queued: red `Keyboard interrupt.` line, exit 4, the job destroyed with that reason.
#[test]
fn ctrl_c_while_spalloc_waits_destroys_the_job() {
    let fixture = Fixture::small();
    let client = fixture.client();
    fixture.fill_machine(&client);
    let mut spalloc = Running::on_terminal(
        fixture
            .tool("spalloc")
            .args(["--owner", "me", "--keepalive", "5", "1"]),
        OnTerminal::ALL,
    );
    let id = job_id_in(&spalloc.screen().wait_for("Waiting in queue..."));
    spalloc.type_keys(CTRL_C);
    assert_eq!(spalloc.wait_exit(), 4, "{:?}", spalloc.screen().text());
    let text = spalloc.screen().wait_for_end();
    assert!(
        text.ends_with(&format!(
            "\x1b8\x1b[K\x1b[31mJob {id}: Keyboard interrupt.\x1b[0m\n"
        )),
        "{text:?}"
    );
    let record = client.get_job_state(id).expect("get_job_state");
    assert_eq!(record.state, JobState::Destroyed);
    // spalloc sends the reason "Keyboard interrupt."; the server records a
    // queued job's destruction as a cancellation, as the reference does.
    assert_eq!(
        record.reason.as_deref(),
        Some("Cancelled: Keyboard interrupt.")
    );
}

/// Ctrl-C while queued with `--no-destroy`: exit 4 and the job stays queued.
#[test]
fn ctrl_c_while_spalloc_waits_with_no_destroy_keeps_the_job() {
    let fixture = Fixture::small();
    let client = fixture.client();
    fixture.fill_machine(&client);
    let mut spalloc = Running::on_terminal(
        fixture
            .tool("spalloc")
            .args(["--owner", "me", "--no-destroy", "1"]),
        OnTerminal::ALL,
    );
    let id = job_id_in(&spalloc.screen().wait_for("Waiting in queue..."));
    spalloc.type_keys(CTRL_C);
    assert_eq!(spalloc.wait_exit(), 4, "{:?}", spalloc.screen().text());
    let text = spalloc.screen().wait_for_end();
    assert!(
        text.contains(&format!("Job {id}: Keyboard interrupt.")),
        "{text:?}"
    );
    let record = client.get_job_state(id).expect("get_job_state");
    assert_eq!(record.state, JobState::Queued, "{record:?}");
    let listed = client.list_jobs().expect("list_jobs");
    assert!(
        listed
            .iter()
            .any(|job| job.job_id == id && job.owner == "me"),
        "{listed:?}"
    );
}

/// `spalloc-ps --watch` clears and repaints on each change; Ctrl-C exits 0.
#[test]
fn ps_watch_repaints_on_a_terminal_until_ctrl_c() {
    let fixture = Fixture::small();
    let client = fixture.client();
    let mut ps = Running::on_terminal(fixture.tool("spalloc-ps").arg("--watch"), OnTerminal::ALL);
    let text = ps.screen().wait_for("Owner (Host)\x1b[0m\n");
    assert!(text.starts_with(CLEAR_SCREEN), "{text:?}");
    let id = fixture.create_job(&client, Allocation::Boards(1), "watched");
    ps.screen()
        .wait_until("a repaint with the job ready", |text| {
            let screen = last_repaint(text);
            screen.contains("\x1b[32mready\x1b[0m") && screen.contains("watched")
        });
    client.destroy_job(id, None).expect("destroy_job");
    let text = ps.screen().wait_until("a repaint without the job", |text| {
        let screen = last_repaint(text);
        screen.contains("Owner (Host)") && !screen.contains("watched")
    });
    assert!(text.matches(CLEAR_SCREEN).count() >= 3, "{text:?}");
    ps.type_keys(CTRL_C);
    assert_eq!(ps.wait_exit(), 0, "{:?}", ps.screen().text());
}

/// `spalloc-machine NAME --watch` clears and repaints on each change; Ctrl-C exits 0.
#[test]
fn machine_watch_repaints_on_a_terminal_until_ctrl_c() {
    let fixture = Fixture::small();
    let client = fixture.client();
    let mut machine = Running::on_terminal(
        fixture.tool("spalloc-machine").args(["m1", "--watch"]),
        OnTerminal::ALL,
    );
    let text = machine.screen().wait_for("  Jobs: 0\n");
    assert!(text.starts_with(CLEAR_SCREEN), "{text:?}");
    let id = fixture.create_job(&client, Allocation::Boards(1), "watched");
    let key = format!("\x1b[{}mA\x1b[0m:{id}", job_colour_codes(id));
    machine
        .screen()
        .wait_until("a repaint with the job's key", |text| {
            let screen = last_repaint(text);
            screen.contains("  Jobs: 1\n") && screen.contains(&key)
        });
    client.destroy_job(id, None).expect("destroy_job");
    machine
        .screen()
        .wait_until("a repaint without the job", |text| {
            last_repaint(text).contains("  Jobs: 0\n") && text.matches(CLEAR_SCREEN).count() >= 3
        });
    machine.type_keys(CTRL_C);
    assert_eq!(machine.wait_exit(), 0, "{:?}", machine.screen().text());
}

/// `spalloc-job ID --watch` clears and repaints on each change, and stops once the job is destroyed, showing its reason.
#[test]
fn job_watch_repaints_on_a_terminal_until_ctrl_c() {
    let fixture = Fixture::small();
    let client = fixture.client();
    let id = fixture.create_job(&client, Allocation::Boards(1), "watched");
    wait_for_state(&client, id, JobState::Ready);
    let mut job = Running::on_terminal(
        fixture
            .tool("spalloc-job")
            .args([id.to_string().as_str(), "--watch"]),
        OnTerminal::ALL,
    );
    let text = job.screen().wait_for("Board power: on\n");
    assert!(text.starts_with(CLEAR_SCREEN), "{text:?}");
    client.power_off_job_boards(id).expect("power off");
    job.screen()
        .wait_until("a repaint with the power off", |text| {
            let screen = last_repaint(text);
            screen.contains("State: ready\n") && screen.contains("Board power: off\n")
        });
    client
        .destroy_job(id, Some("seen enough"))
        .expect("destroy_job");
    job.screen()
        .wait_until("a repaint of the destroyed job", |text| {
            last_repaint(text).contains(&format!(
                "Job ID: {id}\n State: destroyed\nReason: seen enough\n"
            ))
        });
    // A destroyed job will not change again: the watch ends by itself.
    assert_eq!(job.wait_exit(), 0, "{:?}", job.screen().text());
}
