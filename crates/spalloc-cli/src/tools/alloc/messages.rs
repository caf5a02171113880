//! What `spalloc` prints while waiting and once the boards are ready.

pub use crate::queue_state::QueueNote;
use crate::queue_state::{ahead_text, join};
use crate::render::render_definitions;
use crate::terminal::{Style, Terminal};
use spalloc_protocol::JobState;
use std::time::Duration;

/// The status line for a job entering `state`, with its colour; `None` for
/// ready (announced separately, after the CSV is written).
pub fn state_message(
    job_id: u64,
    state: JobState,
    reason: Option<&str>,
) -> Option<(Style, String)> {
    Some(match state {
        JobState::Queued => (Style::YELLOW, format!("Job {job_id}: Waiting in queue...")),
        JobState::Power => (
            Style::YELLOW,
            format!("Job {job_id}: Waiting for power on..."),
        ),
        JobState::Ready => return None,
        JobState::Destroyed => (
            Style::RED,
            match reason {
                Some(reason) => format!("Job {job_id}: Destroyed: {reason}"),
                None => format!("Job {job_id}: Destroyed."),
            },
        ),
        JobState::Unknown => (
            Style::RED,
            format!("Job {job_id}: Job not recognised by server."),
        ),
    })
}

/// Elapsed time as `m:ss`, or `h:mm:ss` from an hour on.
pub fn clock(elapsed: Duration) -> String {
    let seconds = elapsed.as_secs();
    if seconds >= 3600 {
        format!(
            "{}:{:02}:{:02}",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        )
    } else {
        format!("{}:{:02}", seconds / 60, seconds % 60)
    }
}

/// The live suffix shown on a terminal while waiting: elapsed time, and
/// where the job is in the queue and what it waits for.
pub fn progress_suffix(elapsed: Duration, queue: &QueueNote) -> String {
    progress_suffixes(elapsed, queue).swap_remove(0)
}

/// [`progress_suffix`] and shorter forms of it, wordiest first, for narrow
/// windows: the place gets terse, then goes (the reason says more), then the
/// reason goes, then the word "elapsed".
pub fn progress_suffixes(elapsed: Duration, queue: &QueueNote) -> Vec<String> {
    let clock = clock(elapsed);
    let ahead = match queue.position {
        Some(position) => usize::try_from(position)
            .ok()
            .and_then(|p| p.checked_sub(1)),
        None => queue.jobs_ahead,
    };
    let place = ahead.map(ahead_text);
    let terse_place = ahead.map(|n| match n {
        0 => "next".to_owned(),
        n => format!("{n} ahead"),
    });
    let reason = queue.reason.clone();
    let mut forms = Vec::new();
    if let Some(note) = join(place.clone(), reason.clone()) {
        forms.push(format!(" ({clock} elapsed, {note})"));
    }
    if let (Some(terse), Some(reason)) = (&terse_place, &reason) {
        forms.push(format!(" ({clock}, {terse}: {reason})"));
    }
    if let Some(reason) = &reason {
        forms.push(format!(" ({clock}, {reason})"));
    }
    if let Some(place) = &place {
        forms.push(format!(" ({clock} elapsed, {place})"));
    }
    if let Some(terse) = &terse_place {
        forms.push(format!(" ({clock}, {terse})"));
    }
    forms.push(format!(" ({clock} elapsed)"));
    forms.push(format!(" ({clock})"));
    forms.dedup();
    forms
}

/// What the allocated machine looks like, for the info block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyMachine {
    /// Chip (0, 0)'s hostname.
    pub hostname: String,
    /// Width in chips.
    pub width: u32,
    /// Height in chips.
    pub height: u32,
    /// Number of boards (Ethernet connections).
    pub num_boards: usize,
    /// The CSV file of all board hostnames.
    pub csv_path: String,
    /// The machine's name.
    pub machine_name: String,
}

/// The info block printed when no command is given.
pub fn render_ready_info(machine: &ReadyMachine, terminal: &Terminal) -> String {
    let mut entries = vec![
        (
            "Hostname",
            terminal.paint(&Style::BRIGHT, &machine.hostname),
        ),
        ("Width", machine.width.to_string()),
        ("Height", machine.height.to_string()),
    ];
    if machine.num_boards > 1 {
        entries.push(("Num boards", machine.num_boards.to_string()));
        entries.push(("All hostnames", machine.csv_path.clone()));
    }
    entries.push(("Running on", machine.machine_name.clone()));
    render_definitions(&entries)
}

/// The prompt printed after the info block.
pub fn render_prompt(terminal: &Terminal) -> String {
    terminal.paint(&Style::DIM, "<Press enter when done>")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(num_boards: usize) -> ReadyMachine {
        ReadyMachine {
            hostname: "10.0.0.1".to_owned(),
            width: 16,
            height: 8,
            num_boards,
            csv_path: "/tmp/spinnaker_ips_19k_s4pg.csv".to_owned(),
            machine_name: "m1".to_owned(),
        }
    }

    #[test]
    fn several_boards() {
        assert_eq!(
            render_ready_info(&machine(2), &Terminal::forced(false)),
            "     Hostname: 10.0.0.1
        Width: 16
       Height: 8
   Num boards: 2
All hostnames: /tmp/spinnaker_ips_19k_s4pg.csv
   Running on: m1"
        );
        assert_eq!(
            render_prompt(&Terminal::forced(false)),
            "<Press enter when done>"
        );
        assert_eq!(
            render_prompt(&Terminal::forced(true)),
            "\x1b[2m<Press enter when done>\x1b[0m"
        );
    }

    #[test]
    fn one_board() {
        let mut one = machine(1);
        one.hostname = "foobar".to_owned();
        assert_eq!(
            render_ready_info(&one, &Terminal::forced(false)),
            "  Hostname: foobar\n     Width: 16\n    Height: 8\nRunning on: m1"
        );
        assert!(render_ready_info(&one, &Terminal::forced(true))
            .starts_with("  Hostname: \x1b[1mfoobar\x1b[0m"));
    }

    #[test]
    fn status_lines() {
        let text = |s, r| state_message(123, s, r).map(|(_, m)| m);
        assert_eq!(
            text(JobState::Queued, None).as_deref(),
            Some("Job 123: Waiting in queue...")
        );
        assert_eq!(
            text(JobState::Power, None).as_deref(),
            Some("Job 123: Waiting for power on...")
        );
        assert_eq!(text(JobState::Ready, None), None);
        assert_eq!(
            text(JobState::Destroyed, Some("x")).as_deref(),
            Some("Job 123: Destroyed: x")
        );
        assert_eq!(
            text(JobState::Destroyed, None).as_deref(),
            Some("Job 123: Destroyed.")
        );
        assert_eq!(
            text(JobState::Unknown, None).as_deref(),
            Some("Job 123: Job not recognised by server.")
        );
        let ahead = |n| QueueNote {
            jobs_ahead: Some(n),
            ..QueueNote::default()
        };
        assert_eq!(
            progress_suffix(Duration::from_secs(75), &ahead(2)),
            " (1:15 elapsed, 2 queued jobs ahead)"
        );
        assert_eq!(
            progress_suffix(Duration::from_secs(5), &ahead(1)),
            " (0:05 elapsed, 1 queued job ahead)"
        );
        assert_eq!(
            progress_suffix(Duration::from_secs(5), &ahead(0)),
            " (0:05 elapsed, at the head of the queue)"
        );
        assert_eq!(
            progress_suffix(Duration::from_secs(5), &QueueNote::default()),
            " (0:05 elapsed)"
        );
        assert_eq!(clock(Duration::from_secs(3725)), "1:02:05");
        let note = QueueNote {
            position: Some(2),
            reason: Some("waiting for 3 free boards".to_owned()),
            jobs_ahead: None,
        };
        assert_eq!(
            progress_suffixes(Duration::from_secs(5), &note),
            vec![
                " (0:05 elapsed, 1 queued job ahead: waiting for 3 free boards)",
                " (0:05, 1 ahead: waiting for 3 free boards)",
                " (0:05, waiting for 3 free boards)",
                " (0:05 elapsed, 1 queued job ahead)",
                " (0:05, 1 ahead)",
                " (0:05 elapsed)",
                " (0:05)",
            ]
        );
    }

    #[test]
    fn the_servers_queue_position_and_reason_say_what_the_job_waits_for() {
        let note = |position, reason: Option<&str>| QueueNote {
            position: Some(position),
            reason: reason.map(str::to_owned),
            jobs_ahead: None,
        };
        assert_eq!(
            progress_suffix(
                Duration::from_secs(42),
                &note(1, Some("waiting for 3 free boards; 20 of 24 in use"))
            ),
            " (0:42 elapsed, at the head of the queue: waiting for 3 free boards; 20 of 24 in use)"
        );
        assert_eq!(
            progress_suffix(Duration::from_secs(42), &note(3, None)),
            " (0:42 elapsed, 2 queued jobs ahead)"
        );
        assert_eq!(
            progress_suffix(Duration::from_secs(42), &note(2, Some("x"))),
            " (0:42 elapsed, 1 queued job ahead: x)"
        );
        assert_eq!(
            progress_suffix(Duration::from_secs(42), &note(0, Some("x"))),
            " (0:42 elapsed, x)",
            "0: in no queue"
        );
    }
}
