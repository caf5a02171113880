//! The jobs a simulation replays: when each is submitted, how many boards
//! it asks for and how long it runs once it has them.

use rand::{RngExt, SeedableRng};
use rand_xorshift::XorShiftRng;
use std::path::Path;

/// One job of a workload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimJob {
    /// Seconds from the start of the simulation at which it is submitted.
    pub submit: f64,
    /// Boards asked for (`create_job(1)` style for one, `create_job(n)` for
    /// more: at least `n` boards as a rectangle of triads).
    pub boards: u32,
    /// Seconds it runs once it has its boards.
    pub duration: f64,
}

/// A size class of the seeded mix: its share of jobs and its range of
/// boards (log-uniform inside it).
struct SizeClass {
    weight: f64,
    boards: (u32, u32),
}

/// The seeded mix, meant to resemble a shared machine used by many people:
/// half the jobs want a single board, a few want a large part of the
/// machine. Ranges are in boards and scaled to the machine's size (these
/// are for 1,200 boards), so a smaller machine gets the same shape of mix.
const MIX: [SizeClass; 6] = [
    SizeClass {
        weight: 0.50,
        boards: (1, 1),
    },
    SizeClass {
        weight: 0.20,
        boards: (2, 6),
    },
    SizeClass {
        weight: 0.15,
        boards: (7, 24),
    },
    SizeClass {
        weight: 0.10,
        boards: (25, 120),
    },
    SizeClass {
        weight: 0.04,
        boards: (121, 480),
    },
    SizeClass {
        weight: 0.01,
        boards: (481, 1200),
    },
];

/// Shortest and longest run time of a generated job, in seconds
/// (log-uniform in between: a minute to four hours).
const DURATION: (f64, f64) = (60.0, 4.0 * 3600.0);

/// A log-uniform draw from `[lo, hi]`.
fn log_uniform(rng: &mut XorShiftRng, lo: f64, hi: f64) -> f64 {
    (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp()
}

/// `n` jobs drawn from the seeded mix for a machine of `live_boards`
/// boards, submitted as a Poisson stream whose offered load (board-seconds
/// asked for per second, over the machine's boards) is `load`. The same
/// seed always gives the same jobs.
pub fn seeded(seed: u64, n: usize, live_boards: u32, load: f64) -> Vec<SimJob> {
    let mut rng = XorShiftRng::seed_from_u64(seed);
    let scale = f64::from(live_boards) / 1200.0;
    let total: f64 = MIX.iter().map(|c| c.weight).sum();
    let mut jobs: Vec<SimJob> = (0..n)
        .map(|_| {
            let mut pick = rng.random::<f64>() * total;
            let class = MIX
                .iter()
                .find(|c| {
                    pick -= c.weight;
                    pick < 0.0
                })
                .unwrap_or(&MIX[0]);
            let lo = (f64::from(class.boards.0) * scale).max(1.0);
            let hi = (f64::from(class.boards.1) * scale).max(lo);
            let boards =
                (log_uniform(&mut rng, lo, hi).round() as u32).clamp(1, live_boards.max(1));
            let duration = log_uniform(&mut rng, DURATION.0, DURATION.1);
            SimJob {
                submit: 0.0,
                boards,
                duration,
            }
        })
        .collect();
    // Mean board-seconds per job over the machine's capacity gives the
    // arrival rate that offers `load`.
    let work: f64 = jobs.iter().map(|j| f64::from(j.boards) * j.duration).sum();
    let rate = load * f64::from(live_boards) * n as f64 / work.max(1.0);
    let mut t = 0.0;
    for job in &mut jobs {
        t += -(1.0 - rng.random::<f64>()).ln() / rate;
        job.submit = t;
    }
    jobs
}

/// Reads a trace: CSV lines `submit_time,boards,duration` (seconds, boards,
/// seconds; an optional header line naming those columns), in any order.
/// Errors name the line and what is wrong with it.
pub fn read_trace(path: &Path) -> Result<Vec<SimJob>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut jobs = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("{}: {e}", path.display()))?;
        let line = record.position().map_or(i as u64 + 1, |p| p.line());
        if i == 0 && record.get(0) == Some("submit_time") {
            continue;
        }
        let bad = |what: &str| format!("{}:{line}: {what}", path.display());
        if record.len() != 3 {
            return Err(bad("expected submit_time,boards,duration"));
        }
        let submit: f64 = record[0]
            .parse()
            .map_err(|_| bad("submit_time is not a number"))?;
        let boards: u32 = record[1]
            .parse()
            .map_err(|_| bad("boards is not a positive integer"))?;
        let duration: f64 = record[2]
            .parse()
            .map_err(|_| bad("duration is not a number"))?;
        if !(submit.is_finite() && submit >= 0.0) {
            return Err(bad("submit_time must be a non-negative number of seconds"));
        }
        if !(duration.is_finite() && duration >= 0.0) {
            return Err(bad("duration must be a non-negative number of seconds"));
        }
        if boards == 0 {
            return Err(bad("boards must be at least 1"));
        }
        jobs.push(SimJob {
            submit,
            boards,
            duration,
        });
    }
    jobs.sort_by(|a, b| a.submit.total_cmp(&b.submit));
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_workload_and_sizes_stay_on_the_machine() {
        let a = seeded(7, 500, 1200, 0.9);
        assert_eq!(a, seeded(7, 500, 1200, 0.9));
        assert_ne!(a, seeded(8, 500, 1200, 0.9));
        assert!(a.iter().all(|j| (1..=1200).contains(&j.boards)));
        assert!(a.windows(2).all(|w| w[0].submit <= w[1].submit));
        let singles = a.iter().filter(|j| j.boards == 1).count();
        assert!(
            (200..300).contains(&singles),
            "{singles} of 500 single-board"
        );
        let small = seeded(7, 100, 24, 0.9);
        assert!(small.iter().all(|j| (1..=24).contains(&j.boards)));
    }

    #[test]
    fn a_trace_is_read_sorted_and_a_bad_line_is_named() {
        let dir = std::env::temp_dir().join(format!("spalloc-sim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.csv");
        std::fs::write(
            &good,
            "submit_time,boards,duration\n10,3,60\n# a comment\n0, 1, 5.5\n",
        )
        .unwrap();
        let jobs = read_trace(&good).unwrap();
        assert_eq!(
            jobs,
            vec![
                SimJob {
                    submit: 0.0,
                    boards: 1,
                    duration: 5.5
                },
                SimJob {
                    submit: 10.0,
                    boards: 3,
                    duration: 60.0
                },
            ]
        );
        let bad = dir.join("bad.csv");
        std::fs::write(&bad, "0,1,5\n1,zero,5\n").unwrap();
        let err = read_trace(&bad).unwrap_err();
        assert!(
            err.ends_with(":2: boards is not a positive integer"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
