//! Integration tests against the real server (`spalloc-server`), started in
//! process on a free port, and through a TCP proxy that cuts connections.

use spalloc::{Error, Job, JobBuilder, JobState, ProtocolClient, WhereIs};
use spalloc_server::{RunningServer, ServerConfig};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const WAIT: Option<Duration> = Some(Duration::from_secs(20));

/// A server with one 2x1-triad (6-board) machine `m`, fast power and
/// keepalive checks, boards freed at once.
fn server() -> RunningServer {
    let config = ServerConfig::from_toml_str(
        r#"
        port = 0
        ip = "127.0.0.1"
        timeout_check_interval = 0.05
        seconds_before_free = 0.0
        [[machine]]
        name = "m"
        tags = ["default"]
        width = 2
        height = 1
        base_ip = "127.0.1.0"
        power_delay = 0.05
        "#,
    )
    .expect("server config");
    RunningServer::start(config).expect("server start")
}

fn builder(port: u16) -> JobBuilder {
    Job::builder()
        .config_files(Vec::<PathBuf>::new())
        .hostname("127.0.0.1")
        .port(port)
        .owner("tester")
        .timeout(Some(Duration::from_secs(5)))
        .reconnect_delay(Duration::from_millis(50))
        .keepalive(5.0)
}

fn client(port: u16) -> ProtocolClient {
    ProtocolClient::connect_to("127.0.0.1", port, Some(Duration::from_secs(5))).expect("connect")
}

/// Polls until `f` holds, failing after 20 s.
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn version_is_accepted_and_every_request_form_allocates() {
    let server = server();
    let port = server.local_addr().port();
    let c = client(port);
    c.check_version().expect("compatible version");

    let one = builder(port).create().unwrap();
    one.wait_until_ready(WAIT).unwrap();
    assert_eq!(one.boards().unwrap().map(|b| b.len()), Some(1));
    assert_eq!(
        (one.width().unwrap(), one.height().unwrap()),
        (Some(8), Some(8))
    );
    assert_eq!(one.machine_name().unwrap().as_deref(), Some("m"));
    assert!(one.hostname().unwrap().is_some());
    assert_eq!(one.power().unwrap(), Some(true));
    assert_eq!(one.connections().unwrap().map(|c| c.len()), Some(1));
    one.destroy(None).unwrap();

    let three = builder(port).boards(3).create().unwrap();
    three.wait_until_ready(WAIT).unwrap();
    assert_eq!(three.boards().unwrap().map(|b| b.len()), Some(3));
    three.destroy(None).unwrap();

    let triads = builder(port).triads(2, 1).create().unwrap();
    triads.wait_until_ready(WAIT).unwrap();
    assert_eq!(triads.boards().unwrap().map(|b| b.len()), Some(6));
    assert_eq!(triads.connections().unwrap().map(|c| c.len()), Some(6));
    triads.destroy(None).unwrap();

    let at = builder(port)
        .board_at(1, 0, 2)
        .machine("m")
        .create()
        .unwrap();
    at.wait_until_ready(WAIT).unwrap();
    assert_eq!(at.boards().unwrap(), Some(vec![[1, 0, 2]]));
    // where_is, from the job and in all four forms.
    let physical = at.where_is_machine(0, 0).unwrap().expect("chip in job");
    let by_board = c
        .where_is(&WhereIs::Board {
            machine: "m".into(),
            x: 1,
            y: 0,
            z: 2,
        })
        .unwrap()
        .expect("board exists");
    assert_eq!(by_board.physical, physical);
    assert_eq!(by_board.job_id, Some(at.id()));
    let by_phys = c
        .where_is(&WhereIs::Physical {
            machine: "m".into(),
            cabinet: physical[0].into(),
            frame: physical[1].into(),
            board: physical[2].into(),
        })
        .unwrap()
        .unwrap();
    assert_eq!(by_phys.logical, [1, 0, 2]);
    let by_chip = c
        .where_is(&WhereIs::Chip {
            machine: "m".into(),
            x: by_board.chip[0].into(),
            y: by_board.chip[1].into(),
        })
        .unwrap()
        .unwrap();
    assert_eq!(by_chip.logical, [1, 0, 2]);
    let by_job = c
        .where_is(&WhereIs::JobChip {
            job_id: at.id(),
            x: 0,
            y: 0,
        })
        .unwrap()
        .unwrap();
    assert_eq!(by_job.job_chip, Some([0, 0]));
    assert!(c
        .where_is(&WhereIs::Board {
            machine: "nope".into(),
            x: 0,
            y: 0,
            z: 0
        })
        .unwrap()
        .is_none());
    let machines = c.list_machines().unwrap();
    assert_eq!(machines[0].name, "m");
    assert!(c.list_jobs().unwrap().iter().any(|j| j.job_id == at.id()));

    // Resume keeps the server's keepalive.
    let resumed = builder(port).resume(at.id()).create().unwrap();
    assert_eq!(resumed.keepalive(), Some(Duration::from_secs(5)));
    resumed.close();
    at.destroy(Some("done")).unwrap();
}

#[test]
fn server_exceptions_are_reported_verbatim() {
    let server = server();
    let port = server.local_addr().port();
    let e = builder(port)
        .one_board()
        .require_torus(true)
        .create()
        .unwrap_err();
    assert!(
        matches!(e, Error::ServerException(ref m) if m.contains("require_torus")),
        "{e}"
    );
}

#[test]
fn power_and_destroy_with_reason() {
    let server = server();
    let port = server.local_addr().port();
    let job = builder(port).create().unwrap();
    job.wait_until_ready(WAIT).unwrap();
    job.set_power(false).unwrap();
    job.wait_until_ready(WAIT).unwrap();
    assert_eq!(job.power().unwrap(), Some(false));
    job.reset().unwrap();
    job.wait_until_ready(WAIT).unwrap();
    assert_eq!(job.power().unwrap(), Some(true));
    let id = job.id();
    job.destroy(Some("bye")).unwrap();
    let state = client(port).get_job_state(id).unwrap();
    assert_eq!(state.state, JobState::Destroyed);
    assert_eq!(state.reason.as_deref(), Some("bye"));
}

#[test]
fn dropping_a_job_destroys_it_and_run_scopes_it() {
    let server = server();
    let port = server.local_addr().port();
    let c = client(port);
    let id = {
        let job = builder(port).create().unwrap();
        job.id()
    };
    assert_eq!(c.get_job_state(id).unwrap().state, JobState::Destroyed);
    let (id, hostname) = builder(port)
        .run(|j| (j.id(), j.hostname().unwrap()))
        .unwrap();
    assert!(hostname.is_some());
    assert_eq!(c.get_job_state(id).unwrap().state, JobState::Destroyed);
}

#[test]
fn keepalive_thread_keeps_the_job_and_close_lets_it_expire() {
    let server = server();
    let port = server.local_addr().port();
    let c = client(port);
    let job = builder(port).keepalive(0.3).create().unwrap();
    let id = job.id();
    job.wait_until_ready(WAIT).unwrap();
    // Several keepalive periods with nobody but the thread talking.
    thread::sleep(Duration::from_millis(1000));
    assert_eq!(c.get_job_state(id).unwrap().state, JobState::Ready);
    job.close();
    // Poll with list_jobs: get_job_state would itself count as a keepalive.
    wait_for("keepalive expiry", || {
        c.list_jobs()
            .map(|jobs| jobs.iter().all(|j| j.job_id != id))
            .unwrap_or(false)
    });
    assert_eq!(
        c.get_job_state(id).unwrap().reason.as_deref(),
        Some("Job timed out.")
    );
}

#[test]
fn queued_jobs_wait_then_run() {
    let server = server();
    let port = server.local_addr().port();
    let whole = builder(port).triads(2, 1).create().unwrap();
    whole.wait_until_ready(WAIT).unwrap();
    let queued = builder(port).create().unwrap();
    assert_eq!(queued.state().unwrap(), JobState::Queued);
    assert_eq!(queued.hostname().unwrap(), None);
    assert_eq!(
        queued
            .wait_for_state_change(JobState::Queued, Some(Duration::from_millis(100)))
            .unwrap(),
        JobState::Queued
    );
    assert!(matches!(
        queued.wait_until_ready(Some(Duration::from_millis(100))),
        Err(Error::StateChangeTimeout)
    ));
    let waiter = thread::spawn(move || {
        queued
            .wait_until_ready(WAIT)
            .map(|()| queued.boards().unwrap())
    });
    whole.destroy(None).unwrap();
    let boards = waiter.join().unwrap().unwrap();
    assert_eq!(boards.map(|b| b.len()), Some(1));
}

#[test]
fn a_job_destroyed_while_waiting_reports_the_reason() {
    let server = server();
    let port = server.local_addr().port();
    let whole = builder(port).triads(2, 1).create().unwrap();
    let queued = builder(port).create().unwrap();
    let id = queued.id();
    let waiter = thread::spawn(move || queued.wait_until_ready(WAIT));
    wait_for("the waiter to start", || true);
    client(port).destroy_job(id, Some("go away")).unwrap();
    match waiter.join().unwrap() {
        Err(Error::JobDestroyed { job_id, reason }) => {
            assert_eq!(job_id, id);
            assert_eq!(reason.as_deref(), Some("Cancelled: go away"));
        }
        other => panic!("{other:?}"),
    }
    whole.destroy(None).unwrap();
}

/// A TCP proxy whose connections can all be cut at once.
struct Proxy {
    port: u16,
    live: Arc<Mutex<Vec<TcpStream>>>,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (live2, accepted2, stop2) = (live.clone(), accepted.clone(), stop.clone());
        thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                let Ok((down, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = down.set_nonblocking(false);
                let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let _ = down.set_nodelay(true);
                let _ = up.set_nodelay(true);
                {
                    let mut live = live2.lock().unwrap();
                    live.push(down.try_clone().unwrap());
                    live.push(up.try_clone().unwrap());
                }
                accepted2.fetch_add(1, Ordering::SeqCst);
                pump(down.try_clone().unwrap(), up.try_clone().unwrap());
                pump(up, down);
            }
        });
        Proxy {
            port,
            live,
            accepted,
            stop,
        }
    }

    /// Cuts every open connection (both sides); returns how many were cut.
    fn cut(&self) -> usize {
        let mut live = self.live.lock().unwrap();
        for s in live.iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
        let n = live.len() / 2;
        live.clear();
        n
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cut();
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

#[test]
fn a_job_outlives_connection_cuts() {
    let server = server();
    let proxy = Proxy::start(server.local_addr().port());
    let direct = client(server.local_addr().port());
    // Fill the machine so that our job queues.
    let whole = builder(server.local_addr().port())
        .triads(2, 1)
        .create()
        .unwrap();
    whole.wait_until_ready(WAIT).unwrap();

    let job = builder(proxy.port).keepalive(0.4).create().unwrap();
    let id = job.id();
    let waiter = thread::spawn(move || {
        let result = job.wait_until_ready(WAIT);
        (job, result)
    });
    // Cut everything (the waiting connection and the keepalive one) several
    // times, each time after the client has reconnected, across several
    // keepalive periods.
    for round in 0..4 {
        let before = proxy.accepted.load(Ordering::SeqCst);
        wait_for("clients to (re)connect", || {
            proxy.live.lock().unwrap().len() >= 4
        });
        assert!(proxy.cut() >= 1, "round {round}");
        wait_for("reconnection", || {
            proxy.accepted.load(Ordering::SeqCst) >= before + 2
        });
    }
    // Still queued and alive well after several keepalive periods of cuts.
    assert_eq!(direct.get_job_state(id).unwrap().state, JobState::Queued);
    whole.destroy(None).unwrap();
    let (job, result) = waiter.join().unwrap();
    result.expect("job became ready despite the cuts");
    assert_eq!(job.state().unwrap(), JobState::Ready);

    // The keepalive survives cuts while nobody waits.
    wait_for("clients to reconnect", || {
        proxy.live.lock().unwrap().len() >= 2
    });
    proxy.cut();
    thread::sleep(Duration::from_millis(1200)); // three keepalive periods
    assert_eq!(direct.get_job_state(id).unwrap().state, JobState::Ready);

    // Destroy after a cut reconnects and succeeds.
    proxy.cut();
    job.destroy(Some("after cuts")).unwrap();
    let state = direct.get_job_state(id).unwrap();
    assert_eq!(state.state, JobState::Destroyed);
    assert_eq!(state.reason.as_deref(), Some("after cuts"));
}
