//! Our library against the reference Python server (part 2 of the
//! compatibility suite, `compat/run.sh`).
//!
//! Runs only when `SPALLOC_COMPAT_SERVER=HOST:PORT` names a freshly started
//! reference server (`spalloc-server` 1!7.0.0, unmodified version string)
//! serving `compat/machines/small.cfg` ("test-machine": 2x1 triads, 6
//! boards at 127.44.1.(8b+1), seconds_before_free=2). It is `#[ignore]`d,
//! so that `cargo test` needs no reference; `compat/run.sh` runs it with
//! `--ignored`, and run that way without the variable it fails. Each
//! check prints `PASS ...` or `FAIL ...` (run with `--nocapture`).

use spalloc::{Error, Job, JobBuilder, JobState, ProtocolClient, WhereIs};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

const WAIT: Option<Duration> = Some(Duration::from_secs(20));

struct Checks {
    failed: Vec<String>,
}

impl Checks {
    fn check(&mut self, name: &str, ok: bool, detail: impl std::fmt::Debug) {
        if ok {
            println!("PASS rust-lib: {name}");
        } else {
            println!("FAIL rust-lib: {name}: {detail:?}");
            self.failed.push(name.to_string());
        }
    }
}

fn builder(host: &str, port: u16) -> JobBuilder {
    Job::builder()
        .config_files(Vec::<PathBuf>::new())
        .hostname(host)
        .port(port)
        .owner("rustlib")
        .timeout(Some(Duration::from_secs(10)))
        .reconnect_delay(Duration::from_millis(500))
        .keepalive(60.0)
}

#[test]
#[ignore = "needs the Python reference server: compat/run.sh runs it"]
fn compat_library_against_the_reference_server() {
    let addr = std::env::var("SPALLOC_COMPAT_SERVER").expect(
        "SPALLOC_COMPAT_SERVER=HOST:PORT must name a reference server (compat/run.sh sets it)",
    );
    let (host, port) = addr
        .rsplit_once(':')
        .expect("SPALLOC_COMPAT_SERVER=HOST:PORT");
    let port: u16 = port.parse().expect("port");
    let b = || builder(host, port);
    let mut t = Checks { failed: vec![] };
    let c = ProtocolClient::connect_to(host, port, Some(Duration::from_secs(10))).expect("connect");

    let version = c.check_version();
    t.check(
        "check_version accepts the reference's 1!7.0.0",
        matches!(version.as_deref(), Ok("1!7.0.0")),
        &version,
    );

    // One board, and everything a ready job reports.
    let one = b().one_board().create().expect("create");
    one.wait_until_ready(WAIT).expect("ready");
    t.check(
        "one board: geometry",
        (
            one.hostname().ok(),
            one.width().ok(),
            one.height().ok(),
            one.machine_name().ok(),
        ) == (
            Some(Some("127.44.1.1".into())),
            Some(Some(8)),
            Some(Some(8)),
            Some(Some("test-machine".into())),
        ),
        one.machine_info(),
    );
    t.check(
        "one board: connections, boards, power",
        one.connections().ok() == Some(Some(BTreeMap::from([((0, 0), "127.44.1.1".to_string())])))
            && one.boards().ok() == Some(Some(vec![[0, 0, 0]]))
            && one.power().ok() == Some(Some(true)),
        one.machine_info(),
    );
    let physical = one.where_is_machine(3, 2);
    t.check(
        "where_is_machine",
        matches!(physical, Ok(Some([0, 0, 0]))),
        &physical,
    );
    let by_job = c.where_is(&WhereIs::JobChip {
        job_id: one.id(),
        x: 3,
        y: 2,
    });
    t.check(
        "where_is job chip",
        matches!(&by_job, Ok(Some(r)) if r.logical == [0, 0, 0] && r.board_chip == [3, 2]
            && r.job_id == Some(one.id()) && r.job_chip == Some([3, 2])),
        &by_job,
    );
    let by_board = c.where_is(&WhereIs::Board {
        machine: "test-machine".into(),
        x: 1,
        y: 0,
        z: 2,
    });
    t.check(
        "where_is board",
        matches!(&by_board, Ok(Some(r)) if r.physical == [0, 0, 5] && r.chip == [16, 8] && r.job_id.is_none()),
        &by_board,
    );
    let by_phys = c.where_is(&WhereIs::Physical {
        machine: "test-machine".into(),
        cabinet: 0,
        frame: 0,
        board: 5,
    });
    t.check(
        "where_is physical",
        matches!(&by_phys, Ok(Some(r)) if r.logical == [1, 0, 2]),
        &by_phys,
    );
    let by_chip = c.where_is(&WhereIs::Chip {
        machine: "test-machine".into(),
        x: -1,
        y: -1,
    });
    t.check(
        "where_is chip (wrapping)",
        matches!(&by_chip, Ok(Some(r)) if r.chip == [23, 11] && r.logical == [1, 0, 2] && r.board_chip == [7, 3]),
        &by_chip,
    );
    let none = c.where_is(&WhereIs::Board {
        machine: "nope".into(),
        x: 0,
        y: 0,
        z: 0,
    });
    t.check(
        "where_is unknown machine is None",
        matches!(none, Ok(None)),
        &none,
    );
    let id1 = one.id();
    one.destroy(None).expect("destroy");
    let st = c.get_job_state(id1);
    t.check(
        "destroy(None)",
        matches!(&st, Ok(s) if s.state == JobState::Destroyed && s.reason.is_none()),
        &st,
    );

    // A board by X Y Z; power off, on, reset; destroy with a reason.
    let at = b().board_at(1, 0, 2).create().expect("create");
    at.wait_until_ready(WAIT).expect("ready");
    t.check(
        "board_at(1, 0, 2)",
        at.boards().ok() == Some(Some(vec![[1, 0, 2]]))
            && at.hostname().ok() == Some(Some("127.44.1.41".into())),
        at.machine_info(),
    );
    at.set_power(false).expect("power off");
    at.wait_until_ready(WAIT).expect("ready");
    t.check(
        "set_power(false)",
        at.power().ok() == Some(Some(false)),
        at.power(),
    );
    at.set_power(true).expect("power on");
    at.wait_until_ready(WAIT).expect("ready");
    t.check(
        "set_power(true)",
        at.power().ok() == Some(Some(true)),
        at.power(),
    );
    at.reset().expect("reset");
    at.wait_until_ready(WAIT).expect("ready");
    t.check(
        "reset",
        at.state().ok() == Some(JobState::Ready),
        at.state(),
    );
    let idx = at.id();
    at.destroy(Some("lib done")).expect("destroy");
    let st = c.get_job_state(idx);
    t.check(
        "destroy(reason)",
        matches!(&st, Ok(s) if s.state == JobState::Destroyed && s.reason.as_deref() == Some("lib done")),
        &st,
    );
    let resumed = b().resume(idx).create();
    t.check(
        "resuming a destroyed job fails with its reason",
        matches!(&resumed, Err(Error::JobDestroyed { reason: Some(r), .. }) if r.ends_with("lib done")),
        resumed.as_ref().map(|j| j.id()),
    );

    // N boards, then W x H queued behind it, listings.
    thread::sleep(Duration::from_millis(2500)); // seconds_before_free=2
    let four = b().boards(4).min_ratio(0.0).create().expect("create");
    four.wait_until_ready(WAIT).expect("ready");
    t.check(
        "boards(4) gets 2 triads",
        four.boards().ok().flatten().map(|v| v.len()) == Some(6)
            && (four.width().ok(), four.height().ok()) == (Some(Some(24)), Some(Some(12))),
        four.machine_info(),
    );
    let queued = b().triads(1, 1).create().expect("create");
    t.check(
        "triads(1, 1) queues behind a full machine",
        queued.state().ok() == Some(JobState::Queued),
        queued.state(),
    );
    let jobs = c.list_jobs();
    t.check(
        "list_jobs",
        matches!(&jobs, Ok(js) if js.len() == 2 && js[0].job_id == four.id() && js[1].job_id == queued.id()
            && js[0].allocated_machine_name.as_deref() == Some("test-machine")
            && js[0].boards.as_ref().map(|v| v.len()) == Some(6)
            && js[1].state == JobState::Queued && js[1].boards.is_none() && js[1].owner == "rustlib"),
        &jobs,
    );
    let machines = c.list_machines();
    t.check(
        "list_machines",
        matches!(&machines, Ok(ms) if ms.len() == 1 && ms[0].name == "test-machine" && ms[0].tags == ["default"]
            && (ms[0].width, ms[0].height) == (2, 1) && ms[0].dead_boards.is_empty() && ms[0].dead_links.is_empty()),
        &machines,
    );
    four.destroy(None).expect("destroy");
    let ready = queued.wait_until_ready(WAIT);
    t.check(
        "the queued job becomes ready after the destroy",
        ready.is_ok() && queued.boards().ok().flatten().map(|v| v.len()) == Some(3),
        &ready,
    );
    queued.destroy(None).expect("destroy");

    // Keepalive from the background thread, then expiry once it stops.
    let kept = b().one_board().keepalive(1.0).create().expect("create");
    kept.wait_until_ready(WAIT).expect("ready");
    thread::sleep(Duration::from_secs(3));
    let alive = c
        .list_jobs()
        .map(|js| js.iter().any(|j| j.job_id == kept.id()));
    t.check(
        "the keepalive thread keeps a keepalive=1 job alive",
        matches!(alive, Ok(true)),
        &alive,
    );
    let idk = kept.id();
    kept.close();
    let end = Instant::now() + Duration::from_secs(15);
    while Instant::now() < end
        && c.list_jobs()
            .map(|js| js.iter().any(|j| j.job_id == idk))
            .unwrap_or(false)
    {
        thread::sleep(Duration::from_millis(200));
    }
    let st = c.get_job_state(idk);
    t.check(
        "a closed job expires with 'Job timed out.'",
        matches!(&st, Ok(s) if s.state == JobState::Destroyed && s.reason.as_deref() == Some("Job timed out.")),
        &st,
    );

    // An impossible request.
    let impossible = b()
        .triads(3, 3)
        .create()
        .and_then(|j| j.wait_until_ready(WAIT));
    t.check(
        "triads(3, 3) on a 2x1 machine is cancelled",
        matches!(&impossible, Err(Error::JobDestroyed { reason: Some(r), .. })
            if r == "Cancelled: No suitable machines available."),
        &impossible,
    );

    assert!(t.failed.is_empty(), "failed: {:?}", t.failed);
}
