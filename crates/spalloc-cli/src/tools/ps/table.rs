//! The `spalloc-ps` job table.

use crate::python_text::optional_float_text;
use crate::render::{render_table, render_timestamp, TableCell};
use crate::terminal::{Style, Terminal};
use spalloc_protocol::{JobListing, JobState};

/// Which jobs to list; `None` keeps every job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Only jobs allocated on this machine.
    pub machine: Option<String>,
    /// Only jobs of this owner.
    pub owner: Option<String>,
}

impl JobFilter {
    /// Whether `job` passes the filter.
    pub fn accepts(&self, job: &JobListing) -> bool {
        let machine_ok = self
            .machine
            .as_ref()
            .map_or(true, |m| job.allocated_machine_name.as_ref() == Some(m));
        let owner_ok = self.owner.as_ref().map_or(true, |o| &job.owner == o);
        machine_ok && owner_ok
    }
}

/// The short state name and colour of the State column.
fn state_cell(state: JobState) -> TableCell {
    match state {
        JobState::Queued => TableCell::text("queue").styled(Style::BLUE),
        JobState::Power => TableCell::text("power").styled(Style::YELLOW),
        JobState::Ready => TableCell::text("ready").styled(Style::GREEN),
        other => TableCell::text(other.to_wire().to_string()),
    }
}

fn power_cell(job: &JobListing) -> TableCell {
    let Some(power) = job.power else {
        return TableCell::text("");
    };
    let (text, style) = if power {
        ("on", Style::GREEN)
    } else {
        ("off", Style::RED)
    };
    let style = if job.state == JobState::Power {
        Style::YELLOW
    } else {
        style
    };
    TableCell::text(text).styled(style)
}

/// `owner`, plus ` (host)` when the server says which host keeps the job alive.
pub fn owner_and_host(job: &JobListing) -> String {
    match &job.keepalivehost {
        Some(host) => format!("{} ({host})", job.owner),
        None => job.owner.clone(),
    }
}

/// The table of the jobs that pass `filter`, in server order, header first.
pub fn render_job_list(jobs: &[JobListing], filter: &JobFilter, terminal: &Terminal) -> String {
    let header = [
        "ID",
        "State",
        "Power",
        "Boards",
        "Machine",
        "Created at",
        "Keepalive",
        "Owner (Host)",
    ];
    let mut rows = vec![header
        .iter()
        .map(|h| TableCell::text(*h).styled(Style::UNDERSCORE_BRIGHT))
        .collect::<Vec<_>>()];
    for job in jobs.iter().filter(|job| filter.accepts(job)) {
        rows.push(vec![
            TableCell::number(job.job_id),
            state_cell(job.state),
            power_cell(job),
            match &job.boards {
                Some(boards) => TableCell::number(boards.len()),
                None => TableCell::text(""),
            },
            TableCell::text(job.allocated_machine_name.clone().unwrap_or_default()),
            TableCell::text(render_timestamp(job.start_time)),
            TableCell::text(optional_float_text(job.keepalive)),
            TableCell::text(owner_and_host(job)),
        ]);
    }
    render_table(&rows, terminal)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{json, Map};

    /// A local time that renders as `01/01/2000 00:00:00` in this time zone.
    pub(crate) fn y2k_local() -> f64 {
        use chrono::{Local, NaiveDate, TimeZone};
        let naive = NaiveDate::from_ymd_opt(2000, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("valid date");
        Local
            .from_local_datetime(&naive)
            .earliest()
            .expect("local time exists")
            .timestamp() as f64
    }

    pub(crate) fn job(id: u64, owner: &str) -> JobListing {
        JobListing {
            job_id: id,
            owner: owner.to_owned(),
            start_time: y2k_local(),
            keepalive: None,
            state: JobState::Queued,
            power: None,
            args: vec![],
            kwargs: Map::new(),
            allocated_machine_name: None,
            boards: None,
            keepalivehost: None,
        }
    }

    pub(crate) fn reference_jobs() -> Vec<JobListing> {
        let mut one = job(1, "me");
        one.state = JobState::Ready;
        one.power = Some(true);
        one.keepalive = Some(60.0);
        one.allocated_machine_name = Some("m1".to_owned());
        one.boards = Some(vec![[0, 0, 0], [0, 0, 1]]);
        one.keepalivehost = Some("10.0.0.1".to_owned());
        one.args = vec![json!(3), json!(2), json!(1)];
        let two = job(2, "you");
        vec![one, two]
    }

    #[test]
    fn reference_table() {
        let text = render_job_list(
            &reference_jobs(),
            &JobFilter::default(),
            &Terminal::forced(false),
        );
        assert_eq!(
            text,
            "ID  State  Power  Boards  Machine  Created at           Keepalive  Owner (Host)\n\
             \x201  ready  on          2  m1       01/01/2000 00:00:00  60.0       me (10.0.0.1)\n\
             \x202  queue                          01/01/2000 00:00:00  None       you"
        );
    }

    #[test]
    fn filters_by_machine_and_owner() {
        let jobs = reference_jobs();
        let only = |machine: Option<&str>, owner: Option<&str>| {
            let filter = JobFilter {
                machine: machine.map(str::to_owned),
                owner: owner.map(str::to_owned),
            };
            jobs.iter()
                .filter(|j| filter.accepts(j))
                .map(|j| j.job_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(only(None, None), vec![1, 2]);
        assert_eq!(only(Some("m1"), None), vec![1]);
        assert_eq!(only(None, Some("you")), vec![2]);
        assert_eq!(only(Some("m1"), Some("you")), Vec::<u64>::new());
        let header_only = render_job_list(
            &jobs,
            &JobFilter {
                machine: Some("m9".to_owned()),
                owner: None,
            },
            &Terminal::forced(false),
        );
        assert_eq!(
            header_only,
            "ID  State  Power  Boards  Machine  Created at  Keepalive  Owner (Host)"
        );
    }

    #[test]
    fn colours_on_a_terminal() {
        let mut jobs = reference_jobs();
        jobs[0].state = JobState::Power;
        jobs[0].power = Some(false);
        jobs[1].state = JobState::Destroyed;
        let text = render_job_list(&jobs, &JobFilter::default(), &Terminal::forced(true));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("\x1b[4;1mID\x1b[0m  \x1b[4;1mState\x1b[0m"));
        assert!(
            lines[1].contains("\x1b[33mpower\x1b[0m  \x1b[33moff\x1b[0m"),
            "{:?}",
            lines[1]
        );
        assert!(lines[2].contains("  4      "), "{:?}", lines[2]);
    }
}
