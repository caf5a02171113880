//! Helpers for tests of the dashboard over real sockets: a browser-like
//! client that logs in with the form and keeps no redirects, pages and
//! form posts with a session cookie, and `/metrics` read with a real
//! Prometheus text-format parser.

#![allow(dead_code)]

use reqwest::blocking::{Client, Response};

/// A client that does not follow redirects (so tests see them).
pub fn browser() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Logs in with the form as a browser does; returns the session cookie,
/// or `None` if the log-in was refused.
pub fn try_log_in(base: &str, user: &str, password: &str) -> Option<String> {
    let c = browser();
    let form = c
        .get(format!("{base}/spalloc/system/login.html"))
        .send()
        .expect("form");
    let first = session(&form).expect("the form sets a session");
    let page = form.text().expect("body");
    let csrf = csrf_of(&page);
    let done = c
        .post(format!("{base}/spalloc/system/perform_login"))
        .header("Cookie", format!("JSESSIONID={first}"))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("username", user),
            ("password", password),
        ])
        .send()
        .expect("log in");
    if done.status().as_u16() != 302 {
        return None;
    }
    session(&done)
}

/// Logs in as one of the test accounts (see `http_support::start`).
pub fn log_in(base: &str, user: &str) -> String {
    try_log_in(base, user, &crate::http_support::password(user)).expect("log-in refused")
}

/// The value of the first `_csrf` input of a page.
pub fn csrf_of(page: &str) -> String {
    page.split(r#"name="_csrf" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a _csrf input")
        .to_owned()
}

/// The session cookie a response sets.
pub fn session(r: &Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("JSESSIONID="))
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
}

/// `GET` a page with a session: its status and body.
pub fn page(base: &str, cookie: &str, path: &str) -> (u16, String) {
    let r = browser()
        .get(format!("{base}{path}"))
        .header("Cookie", format!("JSESSIONID={cookie}"))
        .send()
        .expect("page");
    (r.status().as_u16(), r.text().expect("body"))
}

/// Posts a form with a session, as a browser without JavaScript does: its
/// status, `Location` and body.
pub fn post_form(
    base: &str,
    cookie: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, Option<String>, String) {
    let r = browser()
        .post(format!("{base}{path}"))
        .header("Cookie", format!("JSESSIONID={cookie}"))
        .form(fields)
        .send()
        .expect("post");
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (r.status().as_u16(), location, r.text().expect("body"))
}

/// `/metrics`, parsed.
pub fn scrape(base: &str) -> prometheus_parse::Scrape {
    let r = browser()
        .get(format!("{base}/metrics"))
        .send()
        .expect("scrape");
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().expect("body");
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parses")
}

/// A gauge's value with one label.
pub fn gauge(scrape: &prometheus_parse::Scrape, name: &str, label: (&str, &str)) -> f64 {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && s.labels.get(label.0) == Some(label.1))
        .map(|s| match s.value {
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{name} is not a gauge: {other:?}"),
        })
        .unwrap_or_else(|| panic!("no {name}{{{}={}}}", label.0, label.1))
}

/// A histogram's count of observations with one label (0 if absent).
pub fn histogram_count(scrape: &prometheus_parse::Scrape, name: &str, label: (&str, &str)) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && s.labels.get(label.0) == Some(label.1))
        .find_map(|s| match &s.value {
            prometheus_parse::Value::Histogram(buckets) => buckets.last().map(|b| b.count),
            _ => None,
        })
        .unwrap_or(0.0)
}
