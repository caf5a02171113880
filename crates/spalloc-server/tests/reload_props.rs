//! Random job traffic interleaved with random config reloads, on the
//! sans-I/O core: live jobs only ever hold boards of machines that exist,
//! never share a board, and once everything is destroyed and powered off
//! every machine is back to idle (a reload never leaks boards).

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use spalloc_server::cmd::create_job;
use spalloc_server::core::bmp_request::BmpRequest;
use spalloc_server::core::controller::{Controller, ControllerSettings};
use spalloc_server::core::machine::Machine;
use spalloc_server::ServerConfig;
use std::collections::BTreeSet;

const SETTINGS: ControllerSettings = ControllerSettings {
    max_retired_jobs: 50,
    seconds_before_free: 1.0,
};

/// Variants of three machines: `None` leaves a machine out.
fn machine(name: &str, variant: u8) -> Option<Machine> {
    let keys = match variant {
        0 => return None,
        1 => "width = 1\nheight = 1\ntags = [\"default\"]",
        2 => "width = 2\nheight = 1\ntags = [\"default\"]",
        3 => "width = 1\nheight = 1\ntags = [\"default\", \"x\"]",
        4 => "width = 1\nheight = 1\ntags = [\"x\"]\ndead_boards = [[0, 0, 1]]",
        _ => "width = 2\nheight = 2\ntags = [\"default\"]\ndead_links = [[0, 0, 0, \"north\"]]",
    };
    let text = format!("[[machine]]\nname = {name:?}\nbase_ip = \"10.0.0.0\"\n{keys}\n");
    Some(
        ServerConfig::from_toml_str(&text)
            .expect("valid machine")
            .machines
            .remove(0)
            .machine,
    )
}

fn machines(variants: &[u8; 3], order: u8) -> Vec<Machine> {
    let mut names = ["a", "b", "c"];
    names.rotate_left(usize::from(order % 3));
    names
        .iter()
        .zip(variants)
        .filter_map(|(n, v)| machine(n, *v))
        .collect()
}

#[derive(Debug, Clone)]
enum Op {
    Create(u8, u8),
    Destroy(usize),
    Complete(usize),
    Reload([u8; 3], u8),
    Tick,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..5, 0u8..4).prop_map(|(s, t)| Op::Create(s, t)),
        2 => (0usize..8).prop_map(Op::Destroy),
        3 => (0usize..4).prop_map(Op::Complete),
        2 => (proptest::array::uniform3(0u8..6), 0u8..3).prop_map(|(v, o)| Op::Reload(v, o)),
        1 => Just(Op::Tick),
    ]
}

fn spec(shape: u8, target: u8) -> spalloc_server::core::job::JobSpec {
    let args: Vec<Value> = match shape {
        0 => vec![],
        1 => vec![json!(1), json!(1)],
        2 => vec![json!(2), json!(1)],
        3 => vec![json!(4)],
        _ => vec![json!(0), json!(0), json!(1)],
    };
    let mut kwargs = Map::new();
    kwargs.insert("owner".into(), json!("me"));
    match target {
        0 => {}
        1 => {
            kwargs.insert("tags".into(), json!(["x"]));
        }
        2 => {
            kwargs.insert("machine".into(), json!("a"));
        }
        _ => {
            kwargs.insert("machine".into(), json!("c"));
        }
    }
    create_job::parse(args, kwargs).expect("valid job")
}

fn check_allocations(c: &Controller) {
    let mut used = BTreeSet::new();
    for job in c.live_jobs() {
        let Some(a) = &job.allocation else { continue };
        let machine = c
            .machines()
            .find(|m| m.name == a.machine)
            .unwrap_or_else(|| panic!("job {} holds boards of a missing machine", job.id));
        for b in &a.boards {
            assert!(b.x < machine.width && b.y < machine.height && b.z < 3);
            assert!(
                used.insert((a.machine.clone(), *b)),
                "board {b:?} of {} allocated twice",
                a.machine
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn reloads_never_leak_or_share_boards(
        start in proptest::array::uniform3(0u8..6),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let mut c = Controller::new(SETTINGS, machines(&start, 0));
        let mut outstanding: Vec<BmpRequest> = Vec::new();
        let mut now = 0.0;
        for op in ops {
            now += 0.25;
            match op {
                Op::Create(shape, target) => {
                    c.create_job(spec(shape, target), None, now);
                }
                Op::Destroy(k) => {
                    let ids: Vec<u64> = c.live_jobs().map(|j| j.id).collect();
                    if !ids.is_empty() {
                        c.destroy_job(ids[k % ids.len()], None, now);
                    }
                }
                Op::Complete(n) => {
                    outstanding.extend(c.take_bmp_requests());
                    let n = n.min(outstanding.len());
                    for r in outstanding.drain(..n) {
                        c.bmp_request_done(r.id, Ok(()), now);
                    }
                }
                Op::Reload(variants, order) => {
                    let report = c.reconfigure(SETTINGS, machines(&variants, order), now);
                    let names: Vec<String> = c.machines().map(|m| m.name.clone()).collect();
                    let expected: Vec<String> =
                        machines(&variants, order).into_iter().map(|m| m.name).collect();
                    prop_assert_eq!(names, expected, "{:?}", report);
                }
                Op::Tick => c.tick(now),
            }
            outstanding.extend(c.take_bmp_requests());
            check_allocations(&c);
        }
        let ids: Vec<u64> = c.live_jobs().map(|j| j.id).collect();
        for id in ids {
            c.destroy_job(id, None, now);
        }
        loop {
            outstanding.extend(c.take_bmp_requests());
            if outstanding.is_empty() {
                break;
            }
            for r in std::mem::take(&mut outstanding) {
                c.bmp_request_done(r.id, Ok(()), now);
            }
        }
        c.tick(now + 100.0);
        prop_assert!(c.is_idle(), "boards leaked after reloads");
    }
}
