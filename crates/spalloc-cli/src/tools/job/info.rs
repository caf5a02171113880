//! The `spalloc-job` information block.

use crate::ethernet_csv::first_hostname;
use crate::python_text::{optional_float_text, repr_of_value, str_of_value};
use crate::render::boards::painted_edges;
use crate::render::{render_boards, render_definitions, render_timestamp, BoardGroup};
use crate::terminal::{Style, Terminal};
use serde_json::{Map, Value};
use spalloc_protocol::{JobListing, JobMachineInfo, JobStateRecord};

/// The `Request` line: how the job was created, as `Job(args, kwarg=repr, ...)`
/// with one keyword argument per line, sorted by name.
pub fn render_request(args: &[Value], kwargs: &Map<String, Value>) -> String {
    let args_text: Vec<String> = args.iter().map(str_of_value).collect();
    let mut names: Vec<&String> = kwargs.keys().collect();
    names.sort();
    let kwargs_text: Vec<String> = names
        .iter()
        .map(|name| format!("{name}={}", repr_of_value(&kwargs[name.as_str()])))
        .collect();
    let joiner = if !args.is_empty() && !kwargs.is_empty() {
        ",\n    "
    } else {
        ""
    };
    format!(
        "Job({}{joiner}{})",
        args_text.join(", "),
        kwargs_text.join(",\n    ")
    )
}

/// The hexagon map of a job's boards: dim labels and inner edges, bright outline.
pub fn render_allocation(boards: &[[u32; 3]], terminal: &Terminal) -> String {
    let group = BoardGroup {
        boards: boards.to_vec(),
        label: terminal.paint(&Style::DIM, " . "),
        inner_edges: painted_edges(|e| terminal.paint(&Style::DIM, e)),
        outer_edges: painted_edges(|e| terminal.paint(&Style::BRIGHT, e)),
    };
    render_boards(&[group], &[])
}

/// Information about a job that `list_jobs` no longer lists (destroyed or unknown).
pub fn render_unlisted_job(job_id: u64, state: &JobStateRecord) -> String {
    let mut entries = vec![
        ("Job ID".to_owned(), job_id.to_string()),
        ("State".to_owned(), state.state.name().to_owned()),
    ];
    if let Some(reason) = &state.reason {
        entries.push(("Reason".to_owned(), reason.clone()));
    }
    render_definitions(&entries)
}

/// Information about a live job, from its `list_jobs` entry and machine info.
/// `queue` is where a queued job is and what it waits for, when the server
/// says (a `Queue` line the reference's server never causes).
pub fn render_listed_job(
    job: &JobListing,
    machine: &JobMachineInfo,
    queue: Option<String>,
    terminal: &Terminal,
) -> String {
    let mut entries: Vec<(&str, String)> = vec![
        ("Job ID", job.job_id.to_string()),
        ("Owner", job.owner.clone()),
        ("State", job.state.name().to_owned()),
    ];
    if let Some(queue) = queue {
        entries.push(("Queue", queue));
    }
    entries.extend([
        ("Start time", render_timestamp(job.start_time)),
        ("Keepalive", optional_float_text(job.keepalive)),
    ]);
    if let Some(host) = &job.keepalivehost {
        entries.push(("Owner host", host.clone()));
    }
    entries.push(("Request", render_request(&job.args, &job.kwargs)));
    if let Some(boards) = &job.boards {
        entries.push(("Allocation", render_allocation(boards, terminal)));
    }
    if let Some(hostname) = machine.connections.as_deref().and_then(first_hostname) {
        entries.push(("Hostname", hostname.to_owned()));
    }
    if let Some(width) = machine.width {
        entries.push(("Width", width.to_string()));
    }
    if let Some(height) = machine.height {
        entries.push(("Height", height.to_string()));
    }
    if let Some(boards) = &job.boards {
        entries.push(("Num boards", boards.len().to_string()));
    }
    if let Some(power) = job.power {
        entries.push(("Board power", if power { "on" } else { "off" }.to_owned()));
    }
    if let Some(name) = &job.allocated_machine_name {
        entries.push(("Running on", name.clone()));
    }
    render_definitions(&entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::ps::table::tests::reference_jobs;
    use serde_json::json;
    use spalloc_protocol::{Connection, JobState};

    #[test]
    fn reference_job_info() {
        let mut job = reference_jobs().remove(0);
        let kwargs = json!({"tags": ["bar"], "min_ratio": 0.333, "owner": "me"});
        job.kwargs = kwargs.as_object().cloned().unwrap_or_default();
        let machine = JobMachineInfo {
            width: Some(16),
            height: Some(8),
            connections: Some(vec![
                Connection([4, 8], "10.0.0.2".to_owned()),
                Connection([0, 0], "10.0.0.1".to_owned()),
            ]),
            machine_name: Some("m1".to_owned()),
            boards: Some(vec![[0, 0, 0], [0, 0, 1]]),
        };
        let expected = "     Job ID: 1
      Owner: me
      State: ready
 Start time: 01/01/2000 00:00:00
  Keepalive: 60.0
 Owner host: 10.0.0.1
    Request: Job(3, 2, 1,
                 min_ratio=0.333,
                 owner='me',
                 tags=['bar'])
 Allocation:      ___
              ___/ . \\
             / . \\___/
             \\___/
   Hostname: 10.0.0.1
      Width: 16
     Height: 8
 Num boards: 2
Board power: on
 Running on: m1";
        assert_eq!(
            render_listed_job(&job, &machine, None, &Terminal::forced(false)),
            expected
        );
    }

    #[test]
    fn queued_job_info() {
        let mut job = reference_jobs().remove(1);
        job.args = vec![];
        job.kwargs = Map::new();
        let text = render_listed_job(
            &job,
            &JobMachineInfo::default(),
            None,
            &Terminal::forced(false),
        );
        assert_eq!(
            text,
            "    Job ID: 2\n     Owner: you\n     State: queued\nStart time: 01/01/2000 00:00:00\n Keepalive: None\n   Request: Job()"
        );
        let text = render_listed_job(
            &job,
            &JobMachineInfo::default(),
            Some("at the head of the queue: waiting for 3 free boards".to_owned()),
            &Terminal::forced(false),
        );
        assert!(
            text.contains("\n     State: queued\n     Queue: at the head of the queue: waiting for 3 free boards\nStart time: "),
            "{text}"
        );
    }

    #[test]
    fn request_forms() {
        let kwargs = json!({"b": "it's", "a": null})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(render_request(&[], &kwargs), "Job(a=None,\n    b=\"it's\")");
        assert_eq!(render_request(&[json!(2)], &Map::new()), "Job(2)");
    }

    #[test]
    fn destroyed_job_info() {
        let mut state = JobStateRecord::unknown();
        state.state = JobState::Destroyed;
        state.reason = Some("Timed out.".to_owned());
        assert_eq!(
            render_unlisted_job(99, &state),
            "Job ID: 99\n State: destroyed\nReason: Timed out."
        );
        assert_eq!(
            render_unlisted_job(7, &JobStateRecord::unknown()),
            "Job ID: 7\n State: unknown"
        );
    }
}
