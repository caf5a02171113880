//! What each tool's manual says beyond its options: config files,
//! substitutions, JSON output, exit statuses, environment, signals and
//! examples. One text, shown two ways: after the options in `--help`, and
//! as sections of the man pages that `spalloc-cli-docs` writes (so that the
//! two, and the README, say the same thing).

use clap::Command;

/// One entry of a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// A paragraph.
    Para(&'static str),
    /// A term and what it means (an exit status, a key, a variable).
    Entry(&'static str, &'static str),
    /// A command line and what it does.
    Example(&'static str, &'static str),
}

/// A titled part of a manual.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Its title, in capitals as man pages have them.
    pub title: &'static str,
    /// What it says.
    pub items: Vec<Item>,
}

use Item::{Entry, Example, Para};

fn config_files() -> Section {
    Section {
        title: "CONFIGURATION FILES",
        items: vec![
            Para("Defaults for the server and for new jobs come from INI files with a [spalloc] section, read lowest priority first: the system file ($XDG_CONFIG_DIRS's first entry, default /etc/xdg, then /spalloc), the user's ($XDG_CONFIG_HOME, default ~/.config, then /spalloc) and .spalloc in the working directory. Later files override earlier ones key by key; command-line options override them all. spalloc-config shows which files exist and the values that result."),
            Para("Keys: hostname, port (22244), owner, keepalive (60.0; None for never), reconnect_delay (5.0), timeout (10.0; None for none), machine, tags (comma-separated), min_ratio (0.333), max_dead_boards (0), max_dead_links (None), require_torus (False), ignore_version (False), server_timeout (3600.0; None for never). A malformed file is an error naming the file and line; an unknown key or a section other than [spalloc] is ignored with a warning naming the file."),
            Example("[spalloc]\nhostname = my-spalloc-server\nowner = me@example.com", "A typical user file, ~/.config/spalloc."),
        ],
    }
}

fn environment(spalloc: bool) -> Section {
    let mut items = vec![
        Entry("NO_COLOR", "When set to a non-empty value, no colours; the live status line and the --watch screen are still redrawn in place."),
        Entry("TERM", "dumb: no escape sequences at all (status lines are printed one per change, --watch prints each screen below the last)."),
        Entry("XDG_CONFIG_HOME, XDG_CONFIG_DIRS", "Where the user's and the system config files are."),
    ];
    if spalloc {
        items.push(Entry(
            "TMPDIR",
            "Where the {ethernet_ips} CSV file is made (mode 0600, removed at exit).",
        ));
    }
    Section {
        title: "ENVIRONMENT",
        items,
    }
}

fn json_job_shape() -> Item {
    Para("A job is an object with the same keys whatever its state: job_id, state (queued, power, ready, destroyed or unknown), state_id (1, 2, 3, 4 or 0), reason, owner, start_time (Unix seconds) and start_time_iso (ISO 8601, UTC), keepalive, keepalivehost, power, queue_position and queue_reason (for a queued job, when the server says), request ({\"args\": [...], \"kwargs\": {...}}), machine, boards, width, height and connections ([{\"x\", \"y\", \"hostname\"}, ...]). Values that do not apply are null.")
}

fn json_errors() -> Item {
    Para("With --json, an error is also printed on stdout as {\"error\": MESSAGE, \"exit_code\": N}, and the exit status is N. Usage errors are not JSON.")
}

fn spalloc_sections() -> Vec<Section> {
    vec![
        Section {
            title: "COMMAND SUBSTITUTIONS",
            items: vec![
                Para("The words after -c are run once the boards are ready, with these replaced (write {{ and }} for literal braces):"),
                Entry("{} {hostname}", "the hostname of chip (0, 0)"),
                Entry("{w} {width}, {h} {height}", "the machine's size in chips"),
                Entry("{ethernet_ips}", "a private temporary CSV file of x, y, hostname for every Ethernet-connected chip, removed when spalloc exits"),
                Entry("{id}", "the job's ID"),
                Para("Several words are each quoted as one shell word, as the reference does. A single word containing spaces is run as a shell command line (so && and pipes work), with the substituted values quoted. A template with an unknown name is refused before any job is made. spalloc exits with the command's status."),
            ],
        },
        Section {
            title: "WAITING",
            items: vec![
                Para("On a terminal, one status line is redrawn in place every second with the time waited, the job's place in the queue and what it waits for (as the server says, or as worked out from its job and machine listings), in shorter forms on narrow windows and never wider than the window. If the connection to the server is lost, the line says that it is reconnecting (every --reconnect-delay seconds) and the clock keeps running; after --server-timeout seconds without the server (default an hour) spalloc gives up with exit status 5, since the job may have been lost with the server. --debug logs each attempt. A job the server cancels because no machine can ever fit it is explained in numbers (\"demo has 24 boards; 100 asked\")."),
                Para("With --no-destroy, spalloc leaves the job on the server at exit and says how to come back to it (spalloc --resume ID) or free it (spalloc-job ID --destroy)."),
                Para("Quotas: when the server warns that the job's group is about to run out of board-seconds (this project's server, with quotas configured), spalloc prints \"Job N: Quota warning: ...\" on stderr once, while it waits or while it holds the job (the state is read every 5 s then), and again only if the warning changes materially (its time left is not what the last one foretold: the group's rate or quota changed). If the job is destroyed while held (the quota ran out, an operator, its keepalive), spalloc says so. Nothing is added to stdout; --quiet silences these lines too."),
            ],
        },
        Section {
            title: "AVOIDING BOARDS",
            items: vec![
                Para("--avoid-board BOARD (repeatable) keeps the job off a board you know to be bad: X,Y,Z (triad coordinates), C:F:B (cabinet, frame, board) or its IP address; a physical location or address names that board on every machine the job may run on. Over the legacy protocol only X,Y,Z is accepted (a C:F:B or an address is a usage error saying so). Only this project's spalloc-server has avoid-lists: on another server spalloc stops with \"This server does not support --avoid-board\" (exit 6) rather than risk the board (a legacy reference server's refusal leaves a queued job behind, which spalloc destroys; a v2 server that drops the field gets its job destroyed)."),
            ],
        },
        Section {
            title: "SIGNALS",
            items: vec![Para("Ctrl-C, SIGTERM and SIGHUP while waiting destroy the job (unless --no-destroy) and exit 4; while -c runs, the command is sent SIGTERM and spalloc exits with its status; at the prompt they end it with 0. The job is destroyed and the CSV file removed in every case.")],
        },
        Section {
            title: "EXIT STATUS",
            items: vec![
                Entry("0", "the boards were used and released (Enter or Ctrl-C at the prompt)"),
                Entry("N", "with -c, the command's exit status (256 - S if it died of signal S)"),
                Entry("1", "the job was destroyed while waiting (the reason is shown), or a resumed job is destroyed or unknown, or the server's version is incompatible"),
                Entry("2", "a usage error, or the server does not know the job"),
                Entry("4", "interrupted while waiting (Ctrl-C, SIGTERM, SIGHUP)"),
                Entry("5", "the server was out of reach for --server-timeout seconds while waiting"),
                Entry("6", "no connection to the server, or the server refused the request"),
            ],
        },
        Section {
            title: "EXAMPLES",
            items: vec![
                Example("spalloc 3", "Allocate at least 3 boards, print their details and wait for Enter."),
                Example("spalloc 2 1 -c 'rig-boot {} {w} {h} && python my_app.py {}'", "Allocate 2x1 triads, run a shell command line with the hostname and size, then release them."),
                Example("spalloc -m demo 0 0 1 --no-destroy --keepalive -1 -c echo {id}", "Allocate one board by its coordinates and keep the job after exit."),
                Example("spalloc --resume 42", "Use job 42 again, keeping it alive while spalloc runs."),
                Example("spalloc 3 --avoid-board 1,0,2 --avoid-board 0:0:14", "Allocate at least 3 boards, none of them board (1, 0, 2) or the one in cabinet 0, frame 0, slot 14 (the latter over v2 only)."),
            ],
        },
    ]
}

fn job_sections() -> Vec<Section> {
    vec![
        Section {
            title: "JSON OUTPUT",
            items: vec![
                Para("--json prints the job as one line of JSON: after info (the default), --ethernet-ips, --power-on, --power-off and --destroy (the job as it then is), and once per change with --watch."),
                json_job_shape(),
                json_errors(),
            ],
        },
        Section {
            title: "EXIT STATUS",
            items: vec![
                Entry("0", "success; --watch also ends with 0 once the job is destroyed, after showing its reason"),
                Entry("1", "a communication or server error"),
                Entry("2", "a usage error, or the server's version is incompatible"),
                Entry("3", "no job ID was given and --owner has no live job, or several"),
                Entry("7", "Ctrl-C while waiting for the boards to power"),
                Entry("8", "the job cannot be powered in its state"),
                Entry("9", "--ethernet-ips of a job that is queued or gone"),
                Entry("10", "the server does not know the job (info, --watch); the reference exits 0 there"),
            ],
        },
        Section {
            title: "EXAMPLES",
            items: vec![
                Example("spalloc-job 42", "Show job 42, with a map of its boards."),
                Example("spalloc-job --owner me --watch", "Follow your only job until it is destroyed."),
                Example("spalloc-job 42 --json | jq -r .state", "Print job 42's state."),
                Example("spalloc-job 42 --destroy 'done for today'", "Destroy job 42 with a reason."),
            ],
        },
    ]
}

fn ps_sections() -> Vec<Section> {
    vec![
        Section {
            title: "OUTPUT",
            items: vec![Para("A table of the live jobs. When the server's job listing says where a queued job is in its queue and what it waits for, a line per such job follows the table. (spalloc-ps never asks for each job's state: on the reference server that would count as a keepalive and keep abandoned jobs alive.)")],
        },
        Section {
            title: "JSON OUTPUT",
            items: vec![
                Para("--json prints a list of jobs as one line of JSON (one line per change with --watch), each job in spalloc-job's shape:"),
                json_job_shape(),
                json_errors(),
            ],
        },
        Section {
            title: "EXIT STATUS",
            items: vec![
                Entry("0", "success"),
                Entry("1", "a communication or server error"),
                Entry("2", "a usage error, or the server's version is incompatible"),
            ],
        },
        Section {
            title: "EXAMPLES",
            items: vec![
                Example("spalloc-ps --owner me", "List your jobs."),
                Example("spalloc-ps --watch", "Follow every job until Ctrl-C."),
            ],
        },
    ]
}

fn machine_sections() -> Vec<Section> {
    vec![
        Section {
            title: "JSON OUTPUT",
            items: vec![
                Para("--json with no machine prints a list of {\"name\", \"num_boards\", \"in_use\", \"jobs\", \"tags\"}; with a machine, {\"machine\": the server's listing, \"summary\": as above, \"jobs\": [{\"key\", \"job_id\", \"num_boards\", \"owner\", \"keepalivehost\", \"boards\"}, ...]}. One line per change with --watch."),
                json_errors(),
            ],
        },
        Section {
            title: "EXIT STATUS",
            items: vec![
                Entry("0", "success"),
                Entry("1", "a communication or server error"),
                Entry("2", "a usage error, or the server's version is incompatible"),
                Entry("6", "no machine of that name"),
            ],
        },
        Section {
            title: "EXAMPLES",
            items: vec![
                Example("spalloc-machine", "List the machines."),
                Example("spalloc-machine demo --detailed", "Show demo's boards and who holds them."),
            ],
        },
    ]
}

fn where_is_sections() -> Vec<Section> {
    vec![
        Section {
            title: "JSON OUTPUT",
            items: vec![
                Para("--json prints the location as one line of JSON: the server's where_is record (machine, logical, physical, chip, board_chip, job_id, job_chip)."),
                json_errors(),
            ],
        },
        Section {
            title: "EXIT STATUS",
            items: vec![
                Entry("0", "success"),
                Entry("1", "a communication or server error"),
                Entry("2", "a usage error, or the server's version is incompatible"),
                Entry("4", "no board at that location"),
            ],
        },
        Section {
            title: "EXAMPLES",
            items: vec![
                Example("spalloc-where-is --board demo 0 0 1", "Where board (0, 0, 1) of demo is, physically and by chip."),
                Example("spalloc-where-is --job-chip 42 8 4", "Which board holds chip (8, 4) of job 42."),
            ],
        },
    ]
}

fn config_sections() -> Vec<Section> {
    vec![Section {
        title: "EXIT STATUS",
        items: vec![
            Entry("0", "success"),
            Entry(
                "1",
                "a config file is malformed (the message names the file and line)",
            ),
            Entry("2", "a usage error"),
        ],
    }]
}

/// The sections of `tool`'s manual, after its options.
pub fn sections(tool: &str) -> Vec<Section> {
    let mut sections = match tool {
        "spalloc" => spalloc_sections(),
        "spalloc-job" => job_sections(),
        "spalloc-ps" => ps_sections(),
        "spalloc-machine" => machine_sections(),
        "spalloc-where-is" => where_is_sections(),
        "spalloc-config" => config_sections(),
        _ => Vec::new(),
    };
    sections.push(config_files());
    sections.push(environment(tool == "spalloc"));
    sections
}

/// The manual as plain text, for the end of `--help`.
pub fn plain_text(tool: &str) -> String {
    let mut out = String::new();
    for section in sections(tool) {
        out.push_str(&format!("{}:\n", title_case(section.title)));
        for item in &section.items {
            match item {
                Para(text) => out.push_str(&format!("  {text}\n")),
                Entry(term, text) => out.push_str(&format!("  {term}: {text}\n")),
                Example(command, text) => {
                    for line in command.lines() {
                        out.push_str(&format!("    {line}\n"));
                    }
                    out.push_str(&format!("  {text}\n"));
                }
            }
        }
        out.push('\n');
    }
    out.trim_end().to_owned()
}

fn title_case(title: &str) -> String {
    let lower = title.to_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Escapes text for roff: backslashes, hyphens (so that options copy and
/// paste as ASCII), and a leading `.` or `'` (which roff takes as a request).
fn roff_escape(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    escaped
        .lines()
        .map(|line| {
            if line.starts_with('.') || line.starts_with('\'') {
                format!("\\&{line}")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The manual as man page sections (roff).
pub fn roff(tool: &str) -> String {
    let mut out = String::new();
    for section in sections(tool) {
        out.push_str(&format!(".SH \"{}\"\n", section.title));
        for item in &section.items {
            match item {
                Para(text) => out.push_str(&format!(".PP\n{}\n", roff_escape(text))),
                Entry(term, text) => out.push_str(&format!(
                    ".TP\n\\fB{}\\fR\n{}\n",
                    roff_escape(term),
                    roff_escape(text)
                )),
                Example(command, text) => out.push_str(&format!(
                    ".PP\n{}\n.PP\n.RS\n.nf\n{}\n.fi\n.RE\n",
                    roff_escape(text),
                    roff_escape(command)
                )),
            }
        }
    }
    out
}

/// `command` with its manual after the options in `--help` (not `-h`).
pub fn with_manual(command: Command) -> Command {
    let text = plain_text(command.get_name());
    command.after_long_help(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_exit_statuses_config_files_and_environment() {
        for tool in [
            "spalloc",
            "spalloc-job",
            "spalloc-ps",
            "spalloc-machine",
            "spalloc-where-is",
            "spalloc-config",
        ] {
            let titles: Vec<&str> = sections(tool).iter().map(|s| s.title).collect();
            for wanted in ["EXIT STATUS", "CONFIGURATION FILES", "ENVIRONMENT"] {
                assert!(titles.contains(&wanted), "{tool}: {titles:?}");
            }
        }
        assert!(plain_text("spalloc").contains("  5: the server was out of reach"));
    }

    #[test]
    fn roff_escapes_hyphens_backslashes_and_leading_dots() {
        assert_eq!(roff_escape("--json a\\b"), "\\-\\-json a\\eb");
        assert_eq!(roff_escape(".spalloc\n'x"), "\\&.spalloc\n\\&'x");
        let page = roff("spalloc-job");
        assert!(page.contains(".SH \"EXIT STATUS\"\n"), "{page}");
        assert!(page.contains(".TP\n\\fB10\\fR\n"), "{page}");
    }
}
