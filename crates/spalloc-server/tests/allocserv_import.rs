//! `spalloc-server machine import`: allocserv's machine definitions (the
//! fixture `fixtures/allocserv-machines.json`, shaped as `py2json.py` writes
//! them: a 2x2-triad machine over two frames with dead boards and dead
//! links, and a one-board machine) become a configuration that the server
//! loads and serves as the JSON says.

mod common;

use common::server_process::ServerProcess;
use serde_json::{json, Value};
use spalloc_protocol::Link;
use spalloc_server::config::allocserv_json::{convert, Boards};
use spalloc_server::config::BmpBackend;
use spalloc_server::core::coordinates::Board;
use spalloc_server::core::machine::Physical;
use spalloc_server::ServerConfig;
use std::path::Path;
use std::process::{Command, Output};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/allocserv-machines.json"
);

/// `spalloc-server machine import FILE EXTRA...`, run to its end.
fn import(file: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spalloc-server"))
        .args(["machine", "import"])
        .arg(file)
        .args(extra)
        .output()
        .expect("run spalloc-server machine import")
}

/// Where spin24's board (x, y, z) sits in the fixture: frame y, slot 3x + z.
fn spin24_place(x: u32, y: u32, z: u32) -> Physical {
    Physical {
        cabinet: 0,
        frame: y,
        board: 3 * x + z,
    }
}

#[test]
fn a_realistic_allocserv_definition_converts_to_a_configuration_the_server_loads() {
    let json = std::fs::read(FIXTURE).expect("fixture");
    let toml = convert(&json, FIXTURE, Boards::Real).expect("converts");
    let config = ServerConfig::from_toml_str(&toml).expect("the server loads it");
    assert_eq!((config.port, config.ip.as_str()), (22244, "127.0.0.1"));
    assert_eq!(config.timeout_check_interval, 5.0);
    assert_eq!(config.max_retired_jobs, 1200);
    assert_eq!(config.seconds_before_free, 30.0);
    let names: Vec<&str> = config
        .machines
        .iter()
        .map(|m| m.machine.name.as_str())
        .collect();
    assert_eq!(names, ["spin24", "one"]);
    assert!(config
        .machines
        .iter()
        .all(|m| matches!(m.bmp, BmpBackend::Scp(_))));

    let spin24 = &config.machines[0].machine;
    assert_eq!((spin24.width, spin24.height), (2, 2));
    assert_eq!(
        spin24.tags,
        ["default".to_owned(), "machine-room".to_owned()].into()
    );
    assert_eq!(
        spin24.dead_boards,
        [Board::new(1, 0, 1), Board::new(1, 1, 2)].into()
    );
    assert_eq!(spin24.live_boards().count(), 10);
    for board in spin24.live_boards() {
        let place = spin24_place(board.x, board.y, board.z);
        assert_eq!(spin24.board_locations[&board], place, "{board:?}");
        assert_eq!(
            spin24.spinnaker_ips[&board],
            format!("10.11.{}.{}", 193 + board.y, 1 + 8 * place.board),
            "{board:?}"
        );
    }
    assert_eq!(spin24.bmp_ips[&(0, 0)], "10.11.193.0");
    assert_eq!(spin24.bmp_ips[&(0, 1)], "10.11.194.0");
    assert_eq!(
        spin24.dead_links,
        [
            (Board::new(0, 0, 0), Link::East),
            (Board::new(0, 0, 0), Link::South),
            (Board::new(1, 1, 0), Link::NorthEast),
            (Board::new(1, 1, 0), Link::West),
        ]
        .into()
    );

    let one = &config.machines[1].machine;
    assert_eq!(one.live_boards().collect::<Vec<_>>(), [Board::new(0, 0, 0)]);
    assert_eq!(one.tags, ["small".to_owned()].into());
    assert_eq!(
        one.board_locations[&Board::new(0, 0, 0)],
        Physical {
            cabinet: 0,
            frame: 0,
            board: 0
        }
    );
    assert_eq!(one.bmp_ips[&(0, 0)], "10.12.0.0");
    assert_eq!(one.spinnaker_ips[&Board::new(0, 0, 0)], "10.12.0.1");
    assert!(toml.contains("single_board = true"), "{toml}");
}

#[test]
fn an_imported_simulated_configuration_serves_the_json_machines_to_a_legacy_client() {
    let dir = common::temp_dir("allocserv-import");
    let out = import(Path::new(FIXTURE), &["--simulated"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toml = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(
        toml.starts_with("# Converted by `spalloc-server machine import`"),
        "{toml}"
    );
    assert!(toml.contains("allocserv-machines.json"), "{toml}");
    assert!(toml.contains("bmp = \"simulated\""), "{toml}");
    assert!(!toml.contains("bmp = \"scp\""), "{toml}");
    let config = dir.join("server.toml");
    std::fs::write(&config, &toml).expect("write the configuration");

    let server = ServerProcess::start(&config, &["--port", "0", "--no-state"]);
    let mut c = server.client();
    let machines = c.ok("list_machines", json!([]), json!({}));
    let listed: Vec<(Value, Value, Value, Value)> = machines
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| {
            let mut tags: Vec<String> = serde_json::from_value(m["tags"].clone()).expect("tags");
            tags.sort();
            (
                m["name"].clone(),
                json!(tags),
                m["width"].clone(),
                m["height"].clone(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (
                json!("spin24"),
                json!(["default", "machine-room"]),
                json!(2),
                json!(2)
            ),
            (json!("one"), json!(["small"]), json!(1), json!(1)),
        ]
    );
    let spin24 = &machines[0];
    let mut dead: Vec<Value> = spin24["dead_boards"].as_array().expect("dead").clone();
    dead.sort_by_key(|b| b.to_string());
    assert_eq!(dead, [json!([1, 0, 1]), json!([1, 1, 2])]);

    for (x, y, z) in [(0, 0, 0), (1, 0, 2), (0, 1, 1), (1, 1, 1)] {
        let place = spin24_place(x, y, z);
        let physical = json!([place.cabinet, place.frame, place.board]);
        let at = c.ok(
            "where_is",
            json!([]),
            json!({"machine": "spin24", "x": x, "y": y, "z": z}),
        );
        assert_eq!(at["physical"], physical, "where_is {x} {y} {z}: {at}");
        assert_eq!(at["logical"], json!([x, y, z]));
        assert_eq!(
            c.ok("get_board_position", json!(["spin24", x, y, z]), json!({})),
            physical
        );
        assert_eq!(
            c.ok(
                "get_board_at_position",
                json!([]),
                json!({"machine_name": "spin24", "x": place.cabinet, "y": place.frame, "z": place.board})
            ),
            json!([x, y, z])
        );
    }
    let at = c.ok(
        "where_is",
        json!([]),
        json!({"machine": "one", "x": 0, "y": 0, "z": 0}),
    );
    assert_eq!(at["physical"], json!([0, 0, 0]));
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_definition_the_server_would_refuse_is_reported_with_nothing_printed() {
    let dir = common::temp_dir("allocserv-refuse");
    // Two machines given the same BMP address: the server refuses that.
    let json = std::fs::read_to_string(FIXTURE)
        .expect("fixture")
        .replace("10.12.0.0", "10.11.193.0");
    let file = dir.join("defs.json");
    std::fs::write(&file, json).expect("write");
    let out = import(&file, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("BMP IP '10.11.193.0' used multiple times."),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_that_is_not_json_is_reported_in_one_line_with_nothing_printed() {
    let dir = common::temp_dir("allocserv-not-json");
    let file = dir.join("defs.json");
    std::fs::write(&file, "[[machine]]\nname = \"m\"\n").expect("write");
    let out = import(&file, &["--simulated"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not an allocserv machine definition file")
            && stderr.contains("line 1 column"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    let missing = import(&dir.join("absent.json"), &[]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_too_large_to_be_machine_definitions_is_refused() {
    let dir = common::temp_dir("allocserv-huge");
    let file = dir.join("defs.json");
    // Sparse: no disk is used for it.
    std::fs::File::create(&file)
        .and_then(|f| f.set_len(spalloc_server::machine_cli::MAX_DEFINITION_BYTES + 1))
        .expect("a large file");
    let out = import(&file, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is larger than 16 MiB: not a machine definition file"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
