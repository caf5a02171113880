//! The tools against our server's v2 API, as real processes: `spalloc-ps`
//! and `spalloc-machine` show the same jobs in the same `--json` shape over
//! both protocols,
//! `spalloc login`/`logout` keep and revoke a private token, bad
//! credentials and unreachable servers are clear failures, and
//! `spalloc-config` says which protocol is in effect and from which file.

mod support;

use spalloc::v2::{Client, CreateJob, Credentials};
use spalloc_server::RunningServer;
use support::v2::url;
use support::{bare_tool, run};

/// A server with both ports and the users alice and bob.
fn server() -> RunningServer {
    support::v2::start(support::v2::config(0, "", 0.02, ""))
}

fn home() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

#[test]
fn spalloc_ps_and_machine_show_the_same_jobs_in_the_same_json_over_both_protocols() {
    let server = server();
    let client = Client::builder(url(&server))
        .credentials(Credentials::password("alice", "ecila"))
        .build()
        .unwrap();
    let job = client.create_job(&CreateJob::boards(1)).unwrap();
    job.wait_until_ready(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let home = home();
    let path = home.path().to_path_buf();

    let (code, legacy, err) = run(bare_tool("spalloc-ps", &path).args([
        "--hostname",
        "127.0.0.1",
        "--port",
        &server.local_addr().port().to_string(),
        "--json",
    ]));
    assert_eq!(code, 0, "{err}");
    let (code, v2, err) = run(bare_tool("spalloc-ps", &path)
        .args(["--url", &url(&server), "--json", "--mine"])
        .env("SPALLOC_USER", "alice")
        .env("SPALLOC_PASSWORD", "ecila"));
    assert_eq!(code, 0, "{err}");
    let legacy: serde_json::Value = serde_json::from_str(&legacy).unwrap();
    let v2: serde_json::Value = serde_json::from_str(&v2).unwrap();
    let (legacy, v2) = (legacy.as_array().unwrap(), v2.as_array().unwrap());
    assert_eq!((legacy.len(), v2.len()), (1, 1), "{legacy:?} {v2:?}");
    let keys = |v: &serde_json::Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(keys(&legacy[0]), keys(&v2[0]));
    for field in ["job_id", "owner", "state", "power", "machine", "boards"] {
        assert_eq!(legacy[0].get(field), v2[0].get(field), "{field}");
    }

    // spalloc-machine, too: the same summary and jobs of the machine.
    let (code, legacy, err) = run(bare_tool("spalloc-machine", &path).args([
        "--hostname",
        "127.0.0.1",
        "--port",
        &server.local_addr().port().to_string(),
        "--json",
        "m1",
    ]));
    assert_eq!(code, 0, "{err}");
    let (code, v2, err) = run(bare_tool("spalloc-machine", &path)
        .args(["--url", &url(&server), "--json", "m1"])
        .env("SPALLOC_USER", "alice")
        .env("SPALLOC_PASSWORD", "ecila"));
    assert_eq!(code, 0, "{err}");
    let legacy: serde_json::Value = serde_json::from_str(&legacy).unwrap();
    let v2: serde_json::Value = serde_json::from_str(&v2).unwrap();
    assert_eq!(legacy, v2);

    // spalloc-where-is: the job's chip, and a board, alike over both.
    let id = job.id().to_string();
    let queries: [Vec<&str>; 2] = [
        vec!["--job-chip", &id, "0", "0"],
        vec!["--board", "m1", "0", "0", "0"],
    ];
    for args in queries {
        let (code, legacy, err) = run(bare_tool("spalloc-where-is", &path)
            .args(["--hostname", "127.0.0.1", "--port"])
            .arg(server.local_addr().port().to_string())
            .args(["--json"])
            .args(&args));
        assert_eq!(code, 0, "{err}");
        let (code, v2, err) = run(bare_tool("spalloc-where-is", &path)
            .args(["--url", &url(&server), "--json"])
            .args(&args)
            .env("SPALLOC_USER", "alice")
            .env("SPALLOC_PASSWORD", "ecila"));
        assert_eq!(code, 0, "{err}");
        assert_eq!(legacy, v2, "{args:?}");
    }

    // spalloc-job: the same --json, then an issue report and a destroy.
    let (code, legacy, err) = run(bare_tool("spalloc-job", &path)
        .args(["--hostname", "127.0.0.1", "--port"])
        .arg(server.local_addr().port().to_string())
        .args(["--json", &id]));
    assert_eq!(code, 0, "{err}");
    let v2_job = |extra: &[&str]| {
        run(bare_tool("spalloc-job", &path)
            .args(["--url", &url(&server), &id])
            .args(extra)
            .env("SPALLOC_USER", "alice")
            .env("SPALLOC_PASSWORD", "ecila"))
    };
    let (code, v2, err) = v2_job(&["--json"]);
    assert_eq!(code, 0, "{err}");
    let legacy: serde_json::Value = serde_json::from_str(&legacy).unwrap();
    let v2: serde_json::Value = serde_json::from_str(&v2).unwrap();
    assert_eq!(keys(&legacy), keys(&v2));
    for field in [
        "job_id",
        "owner",
        "state",
        "power",
        "machine",
        "boards",
        "hostname",
        "width",
        "height",
        "connections",
    ] {
        assert_eq!(legacy.get(field), v2.get(field), "{field}");
    }
    let (code, out, err) = v2_job(&["--report-issue", "will not boot", "--board", "0", "0", "0"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("report noted"), "{out}");

    // The table, too, names the job and its owner.
    let (code, table, err) = run(bare_tool("spalloc-ps", &path)
        .args(["--url", &url(&server)])
        .env("SPALLOC_USER", "alice")
        .env("SPALLOC_PASSWORD", "ecila"));
    assert_eq!(code, 0, "{err}");
    assert!(
        table.contains(&job.id().to_string()) && table.contains("alice"),
        "{table}"
    );
    job.destroy(None).unwrap();
}

#[test]
fn login_keeps_a_private_token_the_tools_use_and_logout_revokes_it() {
    let server = server();
    let home = home();
    let path = home.path().to_path_buf();
    let (code, out, err) = run(bare_tool("spalloc", &path)
        .args(["login", "--url", &url(&server)])
        .env("SPALLOC_USER", "bob")
        .env("SPALLOC_PASSWORD", "bob-password-is-wrong"));
    assert_ne!(code, 0);
    assert!(err.contains("log-in as bob failed"), "{out}{err}");

    let (code, out, err) = run(bare_tool("spalloc", &path)
        .args(["login", "--url", &url(&server)])
        .env("SPALLOC_USER", "bob")
        .env("SPALLOC_PASSWORD", "bob"));
    assert_eq!(code, 0, "{out}{err}");
    let file = path.join("config").join("spalloc-token");
    let text = std::fs::read_to_string(&file).expect("token file");
    assert!(
        !text.contains("\nbob\n") && text.contains("spalloc_"),
        "{text}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // No password in the environment now: the token is used.
    let (code, _, err) = run(bare_tool("spalloc-ps", &path).args(["--url", &url(&server)]));
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = run(bare_tool("spalloc", &path).args(["logout"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(!file.exists());
    let (code, _, err) = run(bare_tool("spalloc-ps", &path).args(["--url", &url(&server)]));
    assert_ne!(code, 0);
    assert!(err.contains("refused the credentials"), "{err}");
}

#[test]
fn bad_credentials_and_unreachable_servers_are_clear_failures() {
    let server = server();
    let home = home();
    let path = home.path().to_path_buf();
    let (code, _, err) = run(bare_tool("spalloc-ps", &path)
        .args(["--url", &url(&server)])
        .env("SPALLOC_TOKEN", "spalloc_revoked_or_made_up"));
    assert_ne!(code, 0);
    assert!(err.contains("refused the credentials"), "{err}");

    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (code, _, err) = run(bare_tool("spalloc-ps", &path)
        .args(["--url", &format!("http://{free}/spalloc/"), "--json"])
        .env("SPALLOC_USER", "alice")
        .env("SPALLOC_PASSWORD", "ecila"));
    assert_ne!(code, 0);
    assert!(err.contains("could not reach"), "{err}");

    // A v2-only option on a legacy server names itself too.
    let (code, _, err) = run(bare_tool("spalloc-job", &path).args([
        "--hostname",
        "127.0.0.1",
        "--port",
        &server.local_addr().port().to_string(),
        "1",
        "--report-issue",
        "broken",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("--report-issue needs a v2 server"), "{err}");
}

#[test]
fn spalloc_config_names_the_protocol_and_the_file_that_chose_it() {
    let home = home();
    let path = home.path().to_path_buf();
    std::fs::create_dir_all(path.join("config")).unwrap();
    std::fs::write(
        path.join("config").join("spalloc"),
        "[spalloc]\nhostname = legacy-host\n",
    )
    .unwrap();
    std::fs::write(
        path.join(".spalloc"),
        "[spalloc]\nurl = https://example.invalid/spalloc/\n",
    )
    .unwrap();
    let (code, out, err) = run(&mut bare_tool("spalloc-config", &path));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Protocol: v2 (REST) at https://example.invalid/spalloc/ (url in")
            && out.contains(".spalloc)"),
        "{out}"
    );
    assert!(!out.contains("warning"), "{out}");
}
