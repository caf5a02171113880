//! The v2 client against our server's v2 API over real sockets: log-in by
//! password and token, every create form, waits, power, where-is, issue
//! reports, paged listings, and surviving a server that forgets sessions
//! or restarts.

mod v2_support;

use spalloc::v2::{BoardLookup, BoardSelector, Client, CreateJob, Credentials, ReportedBoard};
use spalloc::{AnyJob, Error, Job, JobHandle, JobState};
use std::time::{Duration, Instant};
use v2_support::{password, server, token, url};

const READY_WITHIN: Option<Duration> = Some(Duration::from_secs(60));

fn alice(server: &spalloc_server::RunningServer) -> Client {
    Client::builder(url(server))
        .credentials(Credentials::password("alice", password("alice")))
        .build()
        .expect("client")
}

#[test]
fn a_job_made_with_a_password_becomes_ready_and_is_destroyed_with_its_reason() {
    let server = server();
    let client = alice(&server);
    let job = client
        .create_job(&CreateJob::boards(1).machine("test-machine"))
        .expect("create");
    let id = job.id();
    job.wait_until_ready(READY_WITHIN).expect("ready");
    assert_eq!(job.state().unwrap(), JobState::Ready);
    assert_eq!(job.machine_name().unwrap().as_deref(), Some("test-machine"));
    let hostname = job.hostname().unwrap().expect("a hostname once ready");
    let connections = job.connections().unwrap().expect("connections");
    assert_eq!(connections.get(&(0, 0)), Some(&hostname));
    assert_eq!(job.boards().unwrap().map(|b| b.len()), Some(1));
    assert_eq!(job.power().unwrap(), Some(true));
    let status = job.status(false).unwrap();
    assert_eq!(status.owner.as_deref(), Some("alice"));
    assert!(status.original_request.is_some());
    job.destroy(Some("finished with it")).expect("destroy");

    let after = client.job(id).unwrap().status(false).unwrap();
    assert_eq!(after.job_state(), JobState::Destroyed);
    assert_eq!(after.reason.as_deref(), Some("finished with it"));
}

#[test]
fn a_token_works_and_bad_credentials_are_clear_errors() {
    let server = server();
    let secret = token(&server, "bob");
    let client = Client::builder(url(&server))
        .credentials(Credentials::Token(secret))
        .build()
        .unwrap();
    let job = client
        .create_job(&CreateJob::one_board())
        .expect("create with a token");
    job.wait_until_ready(READY_WITHIN).expect("ready");
    assert_eq!(job.status(false).unwrap().owner.as_deref(), Some("bob"));
    job.destroy(None).unwrap();

    let wrong = Client::builder(url(&server))
        .credentials(Credentials::password("alice", "not her password"))
        .build()
        .unwrap();
    let e = wrong.machines().unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    assert!(e.to_string().contains("log-in as alice failed"), "{e}");

    let bad_token = Client::builder(url(&server))
        .credentials(Credentials::Token("spalloc_not_a_token".into()))
        .build()
        .unwrap();
    let e = bad_token.machines().unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
}

#[test]
fn an_unreachable_server_is_a_communication_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = Client::builder(format!("http://127.0.0.1:{port}/spalloc/"))
        .credentials(Credentials::password("alice", "x"))
        .build()
        .unwrap();
    let e = client.machines().unwrap_err();
    assert!(e.is_communication_error(), "{e:?}");
    assert!(e.to_string().contains(&port.to_string()), "{e}");
}

#[test]
fn every_create_form_reaches_the_server() {
    let server = server();
    let client = alice(&server);
    let forms = [
        CreateJob::dimensions(1, 1).machine("test-machine"),
        CreateJob::board(BoardSelector::Triad { x: 1, y: 0, z: 1 }),
        CreateJob::board(BoardSelector::Physical {
            cabinet: 0,
            frame: 0,
            board: 2,
        }),
        CreateJob::boards(2).tags(["default"]).max_dead_boards(0),
    ];
    for form in forms {
        let job = client.create_job(&form).expect("create");
        job.wait_until_ready(READY_WITHIN)
            .unwrap_or_else(|e| panic!("{form:?}: {e}"));
        let echoed = job.status(false).unwrap().original_request.unwrap();
        if let Some(serde_json::Value::Object(board)) = form.to_json().get("board") {
            for (key, value) in board {
                assert_eq!(echoed["board"].get(key), Some(value), "{form:?}");
            }
        }
        job.destroy(None).unwrap();
    }
    // A board by address: the address the machine gives its board (1, 0, 1).
    let record = client
        .where_is("test-machine", &BoardLookup::Logical { x: 1, y: 0, z: 1 })
        .unwrap()
        .expect("the board exists");
    let triad = client
        .where_is(
            "test-machine",
            &BoardLookup::Physical {
                cabinet: record.physical[0],
                frame: record.physical[1],
                board: record.physical[2],
            },
        )
        .unwrap()
        .expect("found by its physical location");
    assert_eq!(triad.logical, [1, 0, 1]);

    // A rectangle at a root board: the triad rooted at board (1, 0, 0).
    let rooted = client
        .create_job(
            &CreateJob::dimensions_at(1, 1, BoardSelector::Triad { x: 1, y: 0, z: 0 })
                .machine("test-machine"),
        )
        .unwrap();
    rooted.wait_until_ready(READY_WITHIN).unwrap();
    let boards = rooted.boards().unwrap().expect("allocated");
    assert_eq!(boards.len(), 3);
    assert!(boards.iter().all(|b| (b[0], b[1]) == (1, 0)), "{boards:?}");
    rooted.destroy(None).unwrap();
}

#[test]
fn where_is_power_and_issue_reports_work_on_a_live_job() {
    let server = server();
    let client = alice(&server);
    let job = client
        .create_job(&CreateJob::board(BoardSelector::Triad { x: 0, y: 0, z: 0 }))
        .unwrap();
    job.wait_until_ready(READY_WITHIN).unwrap();

    let chip = job.where_is_chip(1, 1).unwrap().expect("the job's chip");
    assert_eq!(chip.job_id, Some(job.id()));
    assert_eq!(chip.logical, [0, 0, 0]);
    assert_eq!(job.where_is_machine(1, 1).unwrap(), Some(chip.physical));
    assert_eq!(job.where_is_chip(200, 200).unwrap(), None);
    let by_chip = client
        .where_is("test-machine", &BoardLookup::Chip { x: 1, y: 1 })
        .unwrap()
        .unwrap();
    assert_eq!(by_chip.job_id, Some(job.id()));
    let ip = job.hostname().unwrap().unwrap();
    let by_ip = client
        .where_is("test-machine", &BoardLookup::Address(ip))
        .unwrap()
        .unwrap();
    assert_eq!(by_ip.logical, [0, 0, 0]);

    job.set_power(false).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while job.power().unwrap() != Some(false) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(job.power().unwrap(), Some(false));
    job.set_power(true).unwrap();
    job.wait_until_ready(READY_WITHIN).unwrap();

    let action = job
        .report_issue(
            "board 0 will not boot",
            &[ReportedBoard::Chip { x: 0, y: 0 }],
        )
        .unwrap();
    assert_eq!(action, "report noted");
    job.destroy(None).unwrap();
}

#[test]
fn the_job_list_follows_next_links_and_shows_only_my_jobs() {
    let server = server();
    let client = alice(&server);
    let mine: Vec<_> = (0..5)
        .map(|_| client.create_job(&CreateJob::one_board()).unwrap())
        .collect();
    let bob = Client::builder(url(&server))
        .credentials(Credentials::password("bob", password("bob")))
        .build()
        .unwrap();
    let theirs = bob.create_job(&CreateJob::one_board()).unwrap();

    let urls = client.job_urls_paged(false, 2).unwrap();
    let mut ids: Vec<u64> = urls
        .iter()
        .filter_map(|u| spalloc::v2::shapes::job_id_of(u))
        .collect();
    ids.sort_unstable();
    let mut want: Vec<u64> = mine.iter().map(|j| j.id()).collect();
    want.sort_unstable();
    assert_eq!(ids, want);
    let listed = client.jobs(false).unwrap();
    assert_eq!(listed.len(), 5);
    assert!(listed
        .iter()
        .all(|(_, s)| s.owner.as_deref() == Some("alice")));
    drop(theirs);
    drop(mine);
    let machines = client.machines().unwrap();
    assert_eq!(machines.len(), 1);
    assert_eq!(machines[0].name, "test-machine");
    assert_eq!((machines[0].width, machines[0].height), (2, 1));
    assert_eq!(
        client.machine("test-machine", false).unwrap().name,
        "test-machine"
    );
}

#[test]
fn a_password_session_the_server_forgot_is_renewed_transparently() {
    let first = server();
    let port = first.http_addr().unwrap().port();
    let client = alice(&first);
    client.machines().expect("logged in");
    first.shutdown();
    // A new server on the same port knows nothing of the old session.
    let second = v2_support::start(v2_support::config(port, None));
    let machines = client.machines().expect("logged in again after a 401");
    assert_eq!(machines.len(), 1);
    let job = client
        .create_job(&CreateJob::one_board())
        .expect("changes work too");
    job.destroy(None).unwrap();
    drop(second);
}

#[test]
fn a_job_is_kept_alive_across_a_server_restart() {
    let dir = v2_support::TempDir::new("restart");
    let state = dir.0.join("state.sqlite");
    let first = v2_support::start(v2_support::config(0, Some(&state)));
    let port = first.http_addr().unwrap().port();
    let client = alice(&first);
    let job = client
        .create_job(&CreateJob::one_board().keepalive(Duration::from_secs(30)))
        .unwrap();
    job.wait_until_ready(READY_WITHIN).unwrap();
    first.shutdown();
    std::thread::sleep(Duration::from_secs(1));
    let second = v2_support::start(v2_support::config(port, Some(&state)));
    let seen = job.status(false).expect("the job survived").keep_alive_time;
    // The keepalive thread (every 15 s) reaches the new server.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = job.status(false).unwrap();
        assert_eq!(now.job_state(), JobState::Ready);
        if now.keep_alive_time != seen {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no keepalive reached the restarted server"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    job.destroy(None).unwrap();
    drop(second);
}

#[test]
fn the_builder_picks_the_protocol_by_address_and_refuses_legacy_only_options() {
    let server = server();
    let job = Job::builder()
        .config_files(Vec::<std::path::PathBuf>::new())
        .url(url(&server))
        .credentials(Credentials::password("alice", password("alice")))
        .boards(1)
        .create_any()
        .unwrap();
    assert!(matches!(job, AnyJob::V2(_)));
    job.wait_until_ready(READY_WITHIN).unwrap();
    assert!(job.hostname().unwrap().is_some());
    JobHandle::destroy(job, Some("done")).unwrap();

    let e = Job::builder()
        .config_files(Vec::<std::path::PathBuf>::new())
        .url(url(&server))
        .credentials(Credentials::password("alice", password("alice")))
        .require_torus(true)
        .create_any()
        .unwrap_err();
    assert!(e.to_string().contains("require_torus"), "{e}");

    let legacy = Job::builder()
        .config_files(Vec::<std::path::PathBuf>::new())
        .hostname("127.0.0.1")
        .port(server.local_addr().port())
        .owner("me")
        .create_any()
        .unwrap();
    assert!(matches!(legacy, AnyJob::Legacy(_)));
    legacy.wait_until_ready(READY_WITHIN).unwrap();
    JobHandle::destroy(legacy, None).unwrap();
}
