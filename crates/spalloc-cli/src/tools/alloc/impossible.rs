//! Why a request can never be met, in numbers, for the job the server
//! cancelled with its (reference) reason "No suitable machines available.".
//!
//! The server's reason must stay the reference's word for word, so the
//! numbers are worked out here from `list_machines` and the request.

use spalloc::{Allocation, JobOptions, MachineListing};

/// The reference server's reason for a job that fits no machine.
pub const NO_SUITABLE_MACHINES: &str = "No suitable machines available.";

/// One sentence per machine the request could have used, saying what it has
/// against what was asked; or why no machine could be used at all.
pub fn explain(
    allocation: &Allocation,
    options: &JobOptions,
    machines: &[MachineListing],
) -> String {
    let candidates: Vec<&MachineListing> = match (&options.machine, &options.tags) {
        (Some(name), _) => machines.iter().filter(|m| &m.name == name).collect(),
        (None, tags) => {
            let wanted = tags.clone().unwrap_or_else(|| vec!["default".to_owned()]);
            machines
                .iter()
                .filter(|m| wanted.iter().all(|t| m.tags.contains(t)))
                .collect()
        }
    };
    if candidates.is_empty() {
        return match (&options.machine, &options.tags) {
            (Some(name), _) => format!("there is no machine named '{name}'"),
            (None, tags) => format!(
                "no machine has the tags {}",
                tags.clone()
                    .unwrap_or_else(|| vec!["default".to_owned()])
                    .join(", ")
            ),
        };
    }
    let sentences: Vec<String> = candidates
        .iter()
        .map(|machine| against(machine, allocation, options))
        .collect();
    sentences.join("; ")
}

/// What `machine` has, against what `allocation` asks.
fn against(machine: &MachineListing, allocation: &Allocation, options: &JobOptions) -> String {
    let name = &machine.name;
    let working = machine.num_boards();
    let total = machine.width * machine.height * 3;
    let has_boards = if working == total {
        format!("{name} has {total} boards")
    } else {
        format!("{name} has {working} working boards of {total}")
    };
    let size = format!("{name} is {}x{} triads", machine.width, machine.height);
    match allocation {
        Allocation::OneBoard => format!("{has_boards}; 1 asked"),
        Allocation::Boards(n) if *n > working => format!("{has_boards}; {n} asked"),
        Allocation::Boards(n) => format!(
            "{has_boards}; {n} asked with min-ratio {}, max-dead-boards {}, max-dead-links {}{}",
            options.min_ratio,
            limit(options.max_dead_boards),
            limit(options.max_dead_links),
            if options.require_torus {
                ", torus required"
            } else {
                ""
            }
        ),
        Allocation::Triads { width, height } => {
            format!("{size}; {width}x{height} asked")
        }
        Allocation::Board { x, y, z } => format!("{size}; board ({x}, {y}, {z}) asked"),
    }
}

fn limit(value: Option<u32>) -> String {
    value.map_or_else(|| "any".to_owned(), |n| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> MachineListing {
        MachineListing {
            name: "demo".to_owned(),
            tags: vec!["default".to_owned()],
            width: 4,
            height: 2,
            dead_boards: vec![],
            dead_links: vec![],
        }
    }

    #[test]
    fn a_count_too_large_names_the_machine_and_both_numbers() {
        let options = JobOptions::new("me");
        assert_eq!(
            explain(&Allocation::Boards(100), &options, &[demo()]),
            "demo has 24 boards; 100 asked"
        );
        let mut dead = demo();
        dead.dead_boards = vec![[0, 0, 1]];
        assert_eq!(
            explain(
                &Allocation::Triads {
                    width: 5,
                    height: 1
                },
                &options,
                &[dead.clone()]
            ),
            "demo is 4x2 triads; 5x1 asked"
        );
        assert_eq!(
            explain(&Allocation::Boards(30), &options, &[dead]),
            "demo has 23 working boards of 24; 30 asked"
        );
    }

    #[test]
    fn no_candidate_machine_says_which_filter_matched_nothing() {
        let mut options = JobOptions::new("me");
        options.tags = Some(vec!["fast".to_owned()]);
        assert_eq!(
            explain(&Allocation::OneBoard, &options, &[demo()]),
            "no machine has the tags fast"
        );
        options.tags = None;
        options.machine = Some("big".to_owned());
        assert_eq!(
            explain(&Allocation::OneBoard, &options, &[demo()]),
            "there is no machine named 'big'"
        );
    }
}
