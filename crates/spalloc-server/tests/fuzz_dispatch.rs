//! A property-test fuzzer over frame parsing and command dispatch on the
//! sans-I/O core (cargo-fuzz needs a nightly toolchain; `fuzz/` has the
//! equivalent libFuzzer target for those who have one).
//!
//! Each case is a session: a stream of arbitrary bytes, arbitrary JSON and
//! structurally valid requests with random commands, argument types and
//! kwargs, cut into random chunks, framed by [`LineBuffer`] and run through
//! [`Service::handle_line`], interleaved with the passage of time and BMP
//! completions. Checked: nothing panics, framing returns exactly the lines
//! sent, every non-blank line gets exactly one reply (a JSON object with
//! `return` or `exception`), and no board is ever in two live jobs.
//!
//! CI runs a modest number of cases; `PROPTEST_CASES=200000 cargo test
//! --release -p spalloc-server --test fuzz_dispatch` runs a long campaign.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use spalloc_protocol::LineBuffer;
use spalloc_server::cmd::{Caller, Command};
use spalloc_server::{ServerConfig, Service};

const CONFIG: &str = r#"
    seconds_before_free = 0.5
    max_retired_jobs = 5

    [[machine]]
    name = "m"
    tags = ["default"]
    width = 2
    height = 1
    base_ip = "10.0.0.0"
    dead_boards = [[1, 0, 2]]
    dead_links = [[0, 0, 1, "north"]]

    [[machine]]
    name = "one"
    tags = ["one"]
    single_board = true
    bmp_ip = "10.1.0.1"
    spinnaker_ip = "10.1.0.2"
"#;

/// Names the commands look for, plus some they do not.
const KWARGS: [&str; 22] = [
    "owner",
    "keepalive",
    "machine",
    "tags",
    "min_ratio",
    "max_dead_boards",
    "max_dead_links",
    "require_torus",
    "reason",
    "job_id",
    "machine_name",
    "x",
    "y",
    "z",
    "cabinet",
    "frame",
    "board",
    "chip_x",
    "chip_y",
    "client",
    "bogus",
    "",
];

/// A scalar from the nasty corners: boundaries, huge and negative numbers,
/// NaN-ish strings, small real job IDs.
fn nasty_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (0i64..8).prop_map(Value::from),
        2 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => prop::sample::select(vec![
            json!(-1),
            json!(0),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(1e308),
            json!(-1e308),
            json!(5e-324),
            json!(0.5),
            json!(-0.0),
            json!(2.0),
            json!(1e19),
            json!(-1e19),
            json!(9007199254740993u64),
        ]),
        1 => any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        2 => prop::sample::select(vec![
            "NaN", "nan", "inf", "-inf", "Infinity", "-Infinity", "1e999", "", "m", "one",
            "default", "north", "0", "-1", "1.5", "true", "None", "\u{0}", "\u{1F600}",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
        1 => ".{0,12}".prop_map(Value::String),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::Null),
    ]
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    nasty_scalar().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((".{0,6}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// An argument: mostly scalars, so that commands get past their type checks.
fn arg_value() -> impl Strategy<Value = Value> {
    prop_oneof![4 => nasty_scalar(), 1 => json_value()]
}

fn command_name() -> impl Strategy<Value = String> {
    let names: Vec<&str> = Command::names().collect();
    prop_oneof![
        12 => prop::sample::select(names).prop_map(str::to_owned),
        1 => "[a-z_]{0,12}",
        1 => Just("create_job\0".to_owned()),
    ]
}

/// A request whose shape is right but whose contents are random.
fn request() -> impl Strategy<Value = Value> {
    (
        command_name(),
        prop::option::weighted(0.9, prop::collection::vec(arg_value(), 0..5)),
        prop::option::weighted(
            0.9,
            prop::collection::vec((prop::sample::select(KWARGS.to_vec()), arg_value()), 0..4),
        ),
        any::<bool>(),
    )
        .prop_map(|(command, args, kwargs, bad_shape)| {
            let mut request = Map::new();
            request.insert("command".into(), Value::String(command));
            if let Some(args) = args {
                request.insert("args".into(), Value::Array(args));
            }
            if let Some(kwargs) = kwargs {
                let kwargs: Map<String, Value> =
                    kwargs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                request.insert("kwargs".into(), Value::Object(kwargs));
            }
            if bad_shape {
                request.insert("extra".into(), json!(1));
            }
            Value::Object(request)
        })
}

/// A well-formed create_job in one of its forms, so that sessions really
/// allocate boards.
fn create() -> impl Strategy<Value = Value> {
    let args = prop_oneof![
        Just(json!([])),
        (1u64..4).prop_map(|n| json!([n])),
        (1u64..3, 1u64..3).prop_map(|(w, h)| json!([w, h])),
        (0u64..3, 0u64..2, 0u64..3).prop_map(|(x, y, z)| json!([x, y, z])),
    ];
    let kwargs = prop_oneof![
        Just(json!({"owner": "f"})),
        Just(json!({"owner": "f", "machine": "one"})),
        Just(json!({"owner": "f", "tags": ["one"]})),
        Just(json!({"owner": "f", "keepalive": 0.2})),
        Just(json!({"owner": "f", "require_torus": true})),
        Just(json!({"owner": "f", "max_dead_boards": 1, "min_ratio": 0.1})),
    ];
    (args, kwargs).prop_map(|(a, k)| json!({"command": "create_job", "args": a, "kwargs": k}))
}

#[derive(Debug, Clone)]
enum Op {
    /// One line of text (no newline inside).
    Line(Vec<u8>),
    /// Advance the clock.
    Tick(f64),
    /// Complete (or fail) every outstanding BMP request.
    Bmp(bool),
}

fn line_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => request().prop_map(|v| v.to_string().into_bytes()),
        3 => create().prop_map(|v| v.to_string().into_bytes()),
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..40),
        1 => (1usize..300).prop_map(|depth| {
            let mut s = "[".repeat(depth);
            s.push_str(&"]".repeat(depth));
            format!("{{\"command\": \"create_job\", \"args\": {s}}}").into_bytes()
        }),
        1 => prop::sample::select(vec![
            "", "   ", "\r", "{}", "{\"command\": \"version\"}", "{\"command\":",
            "{\"command\": \"list_jobs\", \"args\": [], \"kwargs\": {}}",
            "{\"command\": \"destroy_job\", \"args\": [1, \"bye\"]}",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
    ]
    .prop_map(|mut b| {
        b.retain(|&c| c != b'\n');
        b
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => line_bytes().prop_map(Op::Line),
        2 => (0.0f64..2.0).prop_map(Op::Tick),
        2 => prop::bool::weighted(0.9).prop_map(Op::Bmp),
    ]
}

/// No board in two jobs.
fn check_invariants(service: &Service) -> Result<(), TestCaseError> {
    service
        .controller
        .check_board_ownership()
        .map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES overrides this for a long campaign.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2048),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_session_is_served_without_panics(
        ops in prop::collection::vec(op(), 1..40),
        chunking in prop::collection::vec(1usize..64, 1..8),
    ) {
        let config = ServerConfig::from_toml_str(CONFIG).unwrap();
        let mut service = Service::new(&config);
        let caller = Caller { client: 1, host: Some("127.0.0.1".into()) };
        let mut now = 1000.0;
        // Lines go through the framer in random chunks, batched between the
        // other events.
        let mut framer = LineBuffer::default();
        let mut pending: Vec<Vec<u8>> = Vec::new();
        let mut chunk = chunking.iter().cycle();
        let mut run_lines = |service: &mut Service, pending: &mut Vec<Vec<u8>>, now: f64| {
            let stream: Vec<u8> = pending.iter().flat_map(|l| l.iter().copied().chain([b'\n'])).collect();
            let mut framed = Vec::new();
            let mut at = 0;
            while at < stream.len() {
                let n = (*chunk.next().unwrap()).min(stream.len() - at);
                framer.extend(&stream[at..at + n]);
                at += n;
                while let Some(line) = framer.next_line().map_err(|e| TestCaseError::fail(e.to_string()))? {
                    framed.push(line.to_vec());
                }
            }
            prop_assert_eq!(&framed, &*pending, "framing returns exactly the lines sent");
            prop_assert_eq!(framer.pending(), 0);
            for line in pending.drain(..) {
                let blank = line.iter().all(u8::is_ascii_whitespace);
                let reply = service.handle_line(&caller, &line, now);
                prop_assert_eq!(reply.is_none(), blank, "one reply per non-blank line");
                if let Some(reply) = reply {
                    let text = spalloc_server::cmd::reply::line(&reply);
                    prop_assert_eq!(text.last(), Some(&b'\n'));
                    let v: Value = serde_json::from_slice(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert!(v.get("return").is_some() || v.get("exception").is_some(), "{}", v);
                }
                for (_, note) in service.take_notifications() {
                    let _ = spalloc_protocol::frame::encode_line(&note.to_value());
                }
                check_invariants(service)?;
            }
            Ok(())
        };
        for op in ops {
            match op {
                Op::Line(line) => pending.push(line),
                Op::Tick(dt) => {
                    run_lines(&mut service, &mut pending, now)?;
                    now += dt;
                    service.tick(now);
                }
                Op::Bmp(ok) => {
                    run_lines(&mut service, &mut pending, now)?;
                    for r in service.take_bmp_requests() {
                        let result = if ok { Ok(()) } else { Err("10.0.0.0".to_owned()) };
                        service.bmp_request_done(r.id, result, now);
                    }
                }
            }
            check_invariants(&service)?;
        }
        run_lines(&mut service, &mut pending, now)?;
        service.client_disconnected(caller.client);
        check_invariants(&service)?;
    }

    #[test]
    fn the_framer_splits_any_byte_stream_like_split_on_newline(
        data in prop::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..400),
        limit in 1usize..64,
        chunk in 1usize..50,
    ) {
        let mut framer = LineBuffer::new(limit);
        let mut got = Vec::new();
        let mut too_long = false;
        'feed: for piece in data.chunks(chunk) {
            framer.extend(piece);
            loop {
                match framer.next_line() {
                    Ok(Some(line)) => got.push(line.to_vec()),
                    Ok(None) => break,
                    Err(_) => {
                        too_long = true;
                        break 'feed;
                    }
                }
            }
        }
        let mut expected: Vec<Vec<u8>> = data.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
        let tail = expected.pop().unwrap_or_default();
        if too_long {
            // Every line returned before the error was within the limit and
            // was a real line; some line (or the tail) was over the limit.
            prop_assert!(got.iter().all(|l| l.len() <= limit));
            prop_assert_eq!(&expected[..got.len()], &got[..]);
            prop_assert!(expected.iter().chain([&tail]).any(|l| l.len() > limit));
        } else {
            prop_assert_eq!(&got, &expected);
            prop_assert!(expected.iter().all(|l| l.len() <= limit));
            prop_assert_eq!(framer.pending(), tail.len());
        }
    }
}
