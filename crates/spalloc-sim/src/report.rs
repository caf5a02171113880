//! The figures of a run: utilisation, waits per job size class, the wait of
//! the largest jobs and of the job at the head of the queue, and a Markdown
//! table comparing runs.

use crate::simulate::Run;
use std::fmt::Write as _;

/// Size classes of the report, in boards asked for (inclusive ranges;
/// the last is open-ended).
pub const CLASSES: [(u32, u32); 6] = [
    (1, 1),
    (2, 6),
    (7, 24),
    (25, 120),
    (121, 480),
    (481, u32::MAX),
];

/// Mean and 95th percentile of a set of waits, and how many.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Waits {
    /// How many jobs.
    pub count: usize,
    /// Mean, seconds.
    pub mean: f64,
    /// 95th percentile (nearest rank), seconds.
    pub p95: f64,
}

impl Waits {
    /// The statistics of these waits (all zero if there are none).
    pub fn of(mut waits: Vec<f64>) -> Waits {
        if waits.is_empty() {
            return Waits::default();
        }
        waits.sort_by(f64::total_cmp);
        let rank = ((waits.len() as f64) * 0.95).ceil() as usize;
        Waits {
            count: waits.len(),
            mean: waits.iter().sum::<f64>() / waits.len() as f64,
            p95: waits[rank.clamp(1, waits.len()) - 1],
        }
    }
}

/// The figures of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Busy board-seconds over the machine's board-seconds during the run
    /// (first submission to last end), in percent.
    pub utilisation: f64,
    /// The run's length, seconds.
    pub makespan: f64,
    /// Waits (submission to start) per [`CLASSES`] entry.
    pub by_class: Vec<Waits>,
    /// Waits of the largest 5% of jobs by boards asked for.
    pub largest: Waits,
    /// Time jobs spent at the head of the queue before starting, over the
    /// jobs that waited there at all.
    pub head: Waits,
    /// Longest time any job spent at the head, seconds.
    pub head_max: f64,
    /// Jobs that never started (larger than the machine).
    pub never_started: usize,
}

impl Summary {
    /// Summarises a run.
    pub fn of(run: &Run) -> Summary {
        let started: Vec<_> = run
            .outcomes
            .iter()
            .filter_map(|o| o.start.map(|s| (o, s - o.job.submit)))
            .collect();
        let by_class = CLASSES
            .iter()
            .map(|&(lo, hi)| {
                Waits::of(
                    started
                        .iter()
                        .filter(|(o, _)| (lo..=hi).contains(&o.job.boards))
                        .map(|&(_, w)| w)
                        .collect(),
                )
            })
            .collect();
        let mut by_size = started.clone();
        // Largest first; equal sizes in submission order.
        by_size.sort_by_key(|(o, _)| std::cmp::Reverse(o.job.boards));
        let top = (by_size.len() as f64 * 0.05).ceil() as usize;
        let largest = Waits::of(by_size[..top].iter().map(|&(_, w)| w).collect());
        let head_waits: Vec<f64> = started
            .iter()
            .map(|(o, _)| o.head_wait)
            .filter(|&w| w > 0.0)
            .collect();
        let head_max = head_waits.iter().copied().fold(0.0, f64::max);
        let capacity = f64::from(run.live_boards) * run.makespan;
        Summary {
            utilisation: if capacity > 0.0 {
                100.0 * run.busy_board_seconds / capacity
            } else {
                0.0
            },
            makespan: run.makespan,
            by_class,
            largest,
            head: Waits::of(head_waits),
            head_max,
            never_started: run.outcomes.len() - started.len(),
        }
    }
}

/// Seconds in a short human form (`42 s`, `12.5 min`, `3.2 h`).
pub fn duration(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.0} s")
    } else if s < 3600.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

fn class_name((lo, hi): (u32, u32)) -> String {
    match (lo, hi) {
        (1, 1) => "1 board".to_owned(),
        (lo, u32::MAX) => format!("{lo}+ boards"),
        (lo, hi) => format!("{lo}-{hi} boards"),
    }
}

/// A Markdown table with one column per run.
pub fn table(runs: &[(String, Summary)]) -> String {
    let mut out = String::new();
    let _ = write!(out, "| |");
    for (name, _) in runs {
        let _ = write!(out, " {name} |");
    }
    let _ = write!(out, "\n|---|");
    for _ in runs {
        let _ = write!(out, "---|");
    }
    out.push('\n');
    let mut row = |label: &str, cell: &dyn Fn(&Summary) -> String| {
        let _ = write!(out, "| {label} |");
        for (_, s) in runs {
            let _ = write!(out, " {} |", cell(s));
        }
        out.push('\n');
    };
    row("utilisation", &|s| format!("{:.1}%", s.utilisation));
    row("makespan", &|s| duration(s.makespan));
    for (i, &class) in CLASSES.iter().enumerate() {
        row(&format!("wait, {} (mean / p95)", class_name(class)), &|s| {
            let w = s.by_class[i];
            format!("{} / {} (n={})", duration(w.mean), duration(w.p95), w.count)
        });
    }
    row("wait, largest 5% by size (mean / p95)", &|s| {
        format!("{} / {}", duration(s.largest.mean), duration(s.largest.p95))
    });
    row("wait at the head of the queue (mean / p95 / max)", &|s| {
        format!(
            "{} / {} / {} (n={})",
            duration(s.head.mean),
            duration(s.head.p95),
            duration(s.head_max),
            s.head.count
        )
    });
    row("jobs never started", &|s| s.never_started.to_string());
    out
}
