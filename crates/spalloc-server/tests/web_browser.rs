//! The dashboard in a real browser: headless Chromium, driven over
//! WebDriver (Debian's `chromedriver`), logs in, opens a machine's map,
//! sees a job created through the API appear on the open page without a
//! reload, destroys it from the job page and sees the map empty again; and
//! an administrator takes a board out of service with the admin page's
//! form, sees it marked on the map, and puts it back. Screenshots of each page go to `$SPALLOC_SCREENSHOTS` (default
//! `target/web-screenshots`) for people to look at.
//!
//! Ignored by default, since it needs Chromium: `web/test/browser.sh`
//! installs `chromium` and `chromium-driver` when missing and runs it with
//! `--ignored`.

mod http_support;

use fantoccini::{Client, ClientBuilder, Locator};
use http_support::{start, Api};
use serde_json::json;
use spalloc_server::ServerConfig;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Kills chromedriver however the test ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn config() -> ServerConfig {
    ServerConfig::from_toml_str(
        r#"
        ip = "127.0.0.1"
        port = 0
        timeout_check_interval = 0.05
        seconds_before_free = 0.05

        [http]
        port = 0

        [[machine]]
        name = "demo"
        width = 3
        height = 2
        base_ip = "127.0.1.0"
        power_delay = 0.05
        dead_boards = [[2, 1, 2]]
        dead_links = [[0, 0, 1, "north"]]
        "#,
    )
    .expect("test config is valid")
}

async fn screenshot(browser: &Client, name: &str) {
    let dir = std::env::var_os("SPALLOC_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/web-screenshots")
        });
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    let png = browser.screenshot().await.expect("screenshot");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot written");
}

async fn connect(driver_port: u16, profile: &std::path::Path) -> Client {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let url = format!("http://127.0.0.1:{driver_port}");
    let mut last = None;
    // chromedriver takes a moment to listen: up to 50 tries, 200 ms apart.
    for _ in 0..50 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return client,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("cannot start a browser session: {last:?}");
}

/// Starts chromedriver and a browser session, runs `test` with them and
/// cleans up.
fn with_browser<F, Fut>(test: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let driver_port = free_port();
    let driver_bin = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let _driver = Driver(
        Command::new(driver_bin)
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let profile = std::env::temp_dir().join(format!(
        "spalloc-browser-{}-{driver_port}",
        std::process::id()
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let browser = connect(driver_port, &profile).await;
        test(browser).await;
    });
    let _ = std::fs::remove_dir_all(&profile);
}

/// Logs in with the form as `user` (a test account), from the log-in page.
async fn log_in(browser: &Client, user: &str) {
    let form = browser
        .form(Locator::Css("form"))
        .await
        .expect("log-in form");
    form.set_by_name("username", user).await.expect("user");
    form.set_by_name("password", &http_support::password(user))
        .await
        .expect("password");
    form.submit().await.expect("log in");
    // Logged in once the page after the form offers to log out.
    browser
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(
            r#"form[action="/spalloc/system/perform_logout"]"#,
        ))
        .await
        .expect("logged in");
}

#[test]
#[ignore = "needs chromium and chromedriver: run web/test/browser.sh"]
fn a_browser_sees_a_job_appear_on_the_open_map_and_destroys_it_from_its_page() {
    let server = start(config());
    let base = format!("http://{}", server.http_addr().expect("http"));
    with_browser(|browser| async move {
        browser
            .goto(&format!("{base}/spalloc/system/machine_info/demo"))
            .await
            .expect("goto");
        // No session: the page sends us to log in.
        let url = browser.current_url().await.expect("url");
        assert!(url.path().ends_with("/login.html"), "{url}");
        screenshot(&browser, "0-login").await;
        log_in(&browser, "alice").await;

        browser
            .goto(&format!("{base}/spalloc/system/machine_info/demo"))
            .await
            .expect("map");
        let boards = browser
            .find_all(Locator::Css("g.board"))
            .await
            .expect("boards");
        assert_eq!(boards.len(), 18, "3 x 2 triads");
        assert!(
            browser
                .find_all(Locator::Css("line.dead-link"))
                .await
                .expect("links")
                .len()
                == 1
        );
        screenshot(&browser, "1-machine-empty").await;
        // A mark that a reload would wipe.
        browser
            .execute("window.notReloaded = true; return true;", vec![])
            .await
            .expect("mark");

        let alice = Api::new(&server, Some("alice"));
        let job = alice
            .create(json!({"num-boards": 3, "machine-name": "demo", "keepalive-interval": "PT1M"}));
        let id = job
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .expect("id")
            .to_owned();
        let on_map = format!(r#"g.board[data-job="{id}"]"#);
        browser
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Css(&on_map))
            .await
            .expect("the new job shows on the open map");
        let kept = browser
            .execute("return window.notReloaded === true;", vec![])
            .await
            .expect("mark");
        assert_eq!(
            kept,
            json!(true),
            "the page was reloaded instead of updated"
        );
        assert_eq!(
            browser
                .find_all(Locator::Css(&on_map))
                .await
                .expect("boards")
                .len(),
            3
        );
        screenshot(&browser, "2-machine-with-job").await;

        browser
            .goto(&format!("{base}/spalloc/system/list_machines"))
            .await
            .expect("machines");
        screenshot(&browser, "3-machines").await;
        browser
            .goto(&format!("{base}/spalloc/system/list_jobs"))
            .await
            .expect("jobs");
        browser
            .find(Locator::Css(&format!(r#"tr[data-job="{id}"]"#)))
            .await
            .expect("listed");
        screenshot(&browser, "4-jobs").await;

        browser
            .goto(&format!("{base}/spalloc/system/job_info/{id}"))
            .await
            .expect("job");
        screenshot(&browser, "5-job").await;
        // The live page may swap its content (the job becoming ready) between
        // finding the button and clicking it: find it again, up to 20 times.
        let mut clicked = false;
        for _ in 0..20 {
            let button = browser
                .find(Locator::Id("destroy"))
                .await
                .expect("destroy button");
            if button.click().await.is_ok() {
                clicked = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(clicked, "the destroy button could not be clicked");
        browser.accept_alert().await.expect("confirm the destroy");
        let gone = browser
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::XPath(
                "//*[@id='job-state' and contains(., 'gone')]",
            ))
            .await;
        assert!(gone.is_ok(), "the job page never showed the job gone");
        screenshot(&browser, "6-job-destroyed").await;

        browser
            .goto(&format!("{base}/spalloc/system/machine_info/demo"))
            .await
            .expect("map");
        assert!(browser
            .find_all(Locator::Css(&on_map))
            .await
            .expect("boards")
            .is_empty());
        screenshot(&browser, "7-machine-after").await;
        browser.close().await.expect("close");
    });
}

/// Whether the machine page shows board `b` (as `"x,y,z"`) out of service.
async fn marked_out_of_service(browser: &Client, base: &str, b: &str) -> bool {
    browser
        .goto(&format!("{base}/spalloc/system/machine_info/demo"))
        .await
        .expect("map");
    !browser
        .find_all(Locator::Css(&format!(
            r#"g.board.out-of-service[data-board="{b}"]"#
        )))
        .await
        .expect("boards")
        .is_empty()
}

#[test]
#[ignore = "needs chromium and chromedriver: run web/test/browser.sh"]
fn an_admin_takes_a_board_out_of_service_sees_it_on_the_map_and_puts_it_back() {
    let server = start(config());
    let base = format!("http://{}", server.http_addr().expect("http"));
    with_browser(|browser| async move {
        browser
            .goto(&format!("{base}/spalloc/system/admin/boards"))
            .await
            .expect("goto");
        log_in(&browser, "root").await;
        browser
            .goto(&format!("{base}/spalloc/system/admin/boards"))
            .await
            .expect("admin boards");
        screenshot(&browser, "8-admin-boards").await;

        let form = browser
            .form(Locator::Id("take-out"))
            .await
            .expect("the take-out form");
        form.set_by_name("x", "1").await.expect("x");
        form.set_by_name("y", "0").await.expect("y");
        form.set_by_name("z", "0").await.expect("z");
        browser
            .find(Locator::Id("take-out-button"))
            .await
            .expect("button")
            .click()
            .await
            .expect("take out");
        let result = browser
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Id("result"))
            .await
            .expect("a result");
        let text = result.text().await.expect("text");
        assert!(text.contains("taken out of service"), "{text}");
        browser
            .find(Locator::Css(r#"tr[data-board="1,0,0"]"#))
            .await
            .expect("listed out of service");
        screenshot(&browser, "9-admin-board-out").await;

        assert!(marked_out_of_service(&browser, &base, "1,0,0").await);
        screenshot(&browser, "10-machine-board-out").await;

        browser
            .goto(&format!("{base}/spalloc/system/admin/boards"))
            .await
            .expect("admin boards");
        browser
            .find(Locator::Css(r#"tr[data-board="1,0,0"] button.return"#))
            .await
            .expect("the return button")
            .click()
            .await
            .expect("return");
        let result = browser
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::XPath(
                "//*[@id='result' and contains(., 'returned to service')]",
            ))
            .await;
        assert!(result.is_ok(), "the board was not returned");
        screenshot(&browser, "11-admin-board-back").await;
        assert!(!marked_out_of_service(&browser, &base, "1,0,0").await);

        for (page, name) in [
            ("reports", "12-admin-reports"),
            ("users", "13-admin-users"),
            ("create-user", "14-admin-create-user"),
        ] {
            browser
                .goto(&format!("{base}/spalloc/system/admin/{page}"))
                .await
                .expect("admin page");
            screenshot(&browser, name).await;
        }
        browser.close().await.expect("close");
    });
}
