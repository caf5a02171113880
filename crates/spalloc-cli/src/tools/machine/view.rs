//! The `spalloc-machine` outputs: the summary table and one machine's map.

use super::keys::{job_key, LETTERS};
use crate::python_text::center;
use crate::render::boards::{default_board_edges, painted_edges, render_boards_with_dead_edge};
use crate::render::{render_cells, render_definitions, render_table, BoardGroup, TableCell};
use crate::terminal::{Style, Terminal};
use serde::Serialize;
use spalloc_protocol::{JobListing, MachineListing};

/// The colours jobs are drawn in, chosen by `job_id % 15`.
const JOB_COLOURS: [&str; 15] = [
    "green",
    "blue",
    "magenta",
    "yellow",
    "cyan",
    "dim_green",
    "dim_blue",
    "dim_magenta",
    "dim_yellow",
    "dim_cyan",
    "bright_green",
    "bright_blue",
    "bright_magenta",
    "bright_yellow",
    "bright_cyan",
];

/// The colour of a job on the machine map.
pub fn job_colour(job_id: u64) -> Style {
    let index = usize::try_from(job_id % 15).unwrap_or(0);
    Style::parse(JOB_COLOURS[index]).unwrap_or(Style::BRIGHT)
}

/// A machine's load, as the summary table and `--json` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineSummary {
    /// The machine's name.
    pub name: String,
    /// Working boards: all boards less the dead ones.
    pub num_boards: u32,
    /// Boards allocated to jobs.
    pub in_use: usize,
    /// Jobs allocated on the machine.
    pub jobs: usize,
    /// The machine's tags.
    pub tags: Vec<String>,
}

/// The jobs allocated on `machine`, in server order.
pub fn jobs_on<'a>(machine: &str, jobs: &'a [JobListing]) -> Vec<&'a JobListing> {
    jobs.iter()
        .filter(|job| job.allocated_machine_name.as_deref() == Some(machine))
        .collect()
}

/// The load of one machine.
pub fn summarise(machine: &MachineListing, jobs: &[JobListing]) -> MachineSummary {
    let on_machine = jobs_on(&machine.name, jobs);
    MachineSummary {
        name: machine.name.clone(),
        num_boards: machine.num_boards(),
        in_use: on_machine
            .iter()
            .map(|job| job.boards.as_ref().map_or(0, Vec::len))
            .sum(),
        jobs: on_machine.len(),
        tags: machine.tags.clone(),
    }
}

/// The table of every machine: name, boards, boards in use, jobs and tags.
pub fn render_machine_list(
    machines: &[MachineListing],
    jobs: &[JobListing],
    terminal: &Terminal,
) -> String {
    let header = ["Name", "Num boards", "In-use", "Jobs", "Tags"];
    let mut rows = vec![header
        .iter()
        .map(|h| TableCell::text(*h).styled(Style::UNDERSCORE_BRIGHT))
        .collect::<Vec<_>>()];
    for machine in machines {
        let summary = summarise(machine, jobs);
        rows.push(vec![
            TableCell::text(summary.name),
            TableCell::number(summary.num_boards),
            TableCell::number(summary.in_use),
            TableCell::number(summary.jobs),
            TableCell::text(summary.tags.join(", ")),
        ]);
    }
    render_table(&rows, terminal)
}

/// One job on a machine, with its map key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyedJob {
    /// The letters marking the job's boards on the map.
    pub key: String,
    /// The job's ID.
    pub job_id: u64,
    /// Boards allocated to it.
    pub num_boards: usize,
    /// Who created it.
    pub owner: String,
    /// The host keeping it alive, if the server says.
    pub keepalivehost: Option<String>,
    /// Its boards.
    pub boards: Vec<[u32; 3]>,
}

/// The jobs on `machine` with keys `A`, `B`, … in server order.
pub fn keyed_jobs(machine: &MachineListing, jobs: &[JobListing]) -> Vec<KeyedJob> {
    jobs_on(&machine.name, jobs)
        .into_iter()
        .enumerate()
        .map(|(index, job)| KeyedJob {
            key: job_key(index, &LETTERS),
            job_id: job.job_id,
            num_boards: job.boards.as_ref().map_or(0, Vec::len),
            owner: job.owner.clone(),
            keepalivehost: job.keepalivehost.clone(),
            boards: job.boards.clone().unwrap_or_default(),
        })
        .collect()
}

/// One machine: its definitions, the board map with each job's key and
/// colour, and the key list (compact) or job table (`detailed`).
pub fn render_machine(
    machine: &MachineListing,
    jobs: &[JobListing],
    detailed: bool,
    terminal: &Terminal,
) -> String {
    let summary = summarise(machine, jobs);
    let keyed = keyed_jobs(machine, jobs);
    let definitions = render_definitions(&[
        ("Name", machine.name.clone()),
        ("Tags", machine.tags.join(", ")),
        (
            "In-use",
            format!("{} of {}", summary.in_use, summary.num_boards),
        ),
        ("Jobs", summary.jobs.to_string()),
    ]);

    let dim = |e: &str| terminal.paint(&Style::DIM, e);
    let mut all_boards = Vec::new();
    for x in 0..machine.width {
        for y in 0..machine.height {
            for z in 0..3 {
                if !machine.dead_boards.contains(&[x, y, z]) {
                    all_boards.push([x, y, z]);
                }
            }
        }
    }
    let mut groups = vec![BoardGroup {
        boards: all_boards,
        label: dim(" . "),
        inner_edges: painted_edges(dim),
        outer_edges: painted_edges(dim),
    }];
    for job in &keyed {
        let colour = job_colour(job.job_id);
        groups.push(BoardGroup {
            boards: job.boards.clone(),
            label: terminal.paint(&colour, &center(&job.key, 3)),
            inner_edges: painted_edges(|e| terminal.paint(&colour, e)),
            outer_edges: painted_edges(|e| terminal.paint(&Style::BRIGHT, e)),
        });
    }
    let dead_edge = default_board_edges().map(|e| terminal.paint(&Style::RED, &e));
    let map = render_boards_with_dead_edge(&groups, &machine.dead_links, &dead_edge);

    let jobs_block = if detailed {
        let header = ["Key", "Job ID", "Num boards", "Owner (Host)"];
        let mut rows = vec![header
            .iter()
            .map(|h| TableCell::text(*h).styled(Style::UNDERSCORE_BRIGHT))
            .collect::<Vec<_>>()];
        for job in &keyed {
            let owner = match &job.keepalivehost {
                Some(host) => format!("{} {host}", job.owner),
                None => job.owner.clone(),
            };
            rows.push(vec![
                TableCell::text(job.key.clone()).styled(job_colour(job.job_id)),
                TableCell::number(job.job_id),
                TableCell::number(job.num_boards),
                TableCell::text(owner),
            ]);
        }
        render_table(&rows, terminal)
    } else {
        let cells: Vec<(usize, String)> = keyed
            .iter()
            .map(|job| {
                let id = job.job_id.to_string();
                (
                    job.key.len() + id.len() + 1,
                    format!("{}:{id}", terminal.paint(&job_colour(job.job_id), &job.key)),
                )
            })
            .collect();
        render_cells(&cells, 80)
    };
    format!("{definitions}\n\n{map}\n\n{jobs_block}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::ps::table::tests::job;

    fn machines() -> Vec<MachineListing> {
        vec![
            MachineListing {
                name: "m1".to_owned(),
                tags: vec!["default".to_owned()],
                width: 2,
                height: 1,
                dead_boards: vec![[1, 0, 2]],
                dead_links: vec![],
            },
            MachineListing {
                name: "m2".to_owned(),
                tags: vec!["pie".to_owned(), "chips".to_owned()],
                width: 1,
                height: 1,
                dead_boards: vec![],
                dead_links: vec![],
            },
        ]
    }

    fn jobs() -> Vec<JobListing> {
        let mut a = job(0, "me");
        a.allocated_machine_name = Some("m1".to_owned());
        a.boards = Some(vec![[0, 0, 0]]);
        let mut b = job(1, "me");
        b.allocated_machine_name = Some("m1".to_owned());
        b.boards = Some(vec![[0, 0, 1], [0, 0, 2]]);
        vec![a, b, job(2, "queued")]
    }

    #[test]
    fn summary_table() {
        let mut jobs = jobs();
        jobs.remove(0);
        assert_eq!(
            render_machine_list(&machines(), &jobs, &Terminal::forced(false)),
            "Name  Num boards  In-use  Jobs  Tags\n\
             m1             5       2     1  default\n\
             m2             3       0     0  pie, chips"
        );
    }

    const REFERENCE_MAP: &str = "  Name: m1
  Tags: default
In-use: 3 of 5
  Jobs: 2

 ___
/ B \\___     ___
\\___/ B \\___/ . \\
/ A \\___/ . \\___/
\\___/   \\___/

";

    #[test]
    fn detailed_machine() {
        let text = render_machine(&machines()[0], &jobs(), true, &Terminal::forced(false));
        assert_eq!(
            text,
            format!(
                "{REFERENCE_MAP}Key  Job ID  Num boards  Owner (Host)\nA         0           1  me\nB         1           2  me"
            )
        );
    }

    #[test]
    fn compact_machine() {
        let text = render_machine(&machines()[0], &jobs(), false, &Terminal::forced(false));
        assert_eq!(text, format!("{REFERENCE_MAP}A:0  B:1"));
    }

    #[test]
    fn colours_follow_job_ids() {
        assert_eq!(job_colour(0), Style::GREEN);
        assert_eq!(job_colour(16), Style::BLUE);
        assert_eq!(job_colour(5).prefix(), "\x1b[2;32m");
        let text = render_machine(&machines()[0], &jobs(), false, &Terminal::forced(true));
        assert!(
            text.ends_with("\x1b[32mA\x1b[0m:0  \x1b[34mB\x1b[0m:1"),
            "{text:?}"
        );
    }
}
