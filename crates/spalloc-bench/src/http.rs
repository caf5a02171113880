//! The v2 REST API modes of `spalloc-load`: authenticated `GET` of a job's
//! state from N clients at once, and job cycles (create, poll until READY,
//! delete), measured the same way as their legacy counterparts so
//! `bench/run.sh` can put them side by side.

use super::{concurrent_run, summarize, Run, TIMEOUT};
use serde_json::{json, Value};
use spalloc_bench::{maybe_cpu, Error, Result, Stats};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the API is and who asks.
#[derive(clap::Args, Clone)]
pub struct HttpTarget {
    /// The API's base URL, e.g. `http://127.0.0.1:9091/spalloc/srv/spalloc`.
    pub base: String,
    /// A personal API token (sent as `Authorization: Bearer`).
    #[arg(long)]
    pub token: String,
    /// PID of the server process, for its CPU time (same machine only).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Label copied into the JSON output.
    #[arg(long, default_value = "")]
    pub label: String,
}

/// One keep-alive client.
struct Client {
    agent: ureq::Agent,
    auth: String,
}

impl Client {
    fn new(t: &HttpTarget) -> Client {
        Client {
            agent: ureq::AgentBuilder::new().timeout(TIMEOUT).build(),
            auth: format!("Bearer {}", t.token),
        }
    }

    fn call(
        &self,
        method: &str,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Option<String>, String)> {
        let request = self
            .agent
            .request(method, url)
            .set("Authorization", &self.auth);
        let result = match body {
            Some(b) => request
                .set("Content-Type", "application/json")
                .send_string(&b.to_string()),
            None => request.call(),
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => return Err(Error::context(format!("{method} {url}"), e)),
        };
        let status = response.status();
        let location = response.header("Location").map(str::to_owned);
        let text = response
            .into_string()
            .map_err(|e| Error::context("reading a reply", e))?;
        if status >= 400 {
            return Err(Error(format!("{method} {url}: {status} {text}")));
        }
        Ok((status, location, text))
    }

    fn state(&self, job: &str, wait: bool) -> Result<String> {
        let url = if wait {
            format!("{job}?wait=true")
        } else {
            job.to_owned()
        };
        let (_, _, text) = self.call("GET", &url, None)?;
        let v: Value = serde_json::from_str(&text).map_err(|e| Error::context("job state", e))?;
        Ok(v["state"].as_str().unwrap_or("").to_owned())
    }

    /// Creates a one-board job; returns its URL.
    fn create(&self, base: &str) -> Result<String> {
        let body = json!({"num-boards": 1, "tags": ["default"], "keepalive-interval": "PT300S"});
        let (_, location, _) = self.call("POST", &format!("{base}/jobs"), Some(&body))?;
        location.ok_or_else(|| Error("no Location for the new job".into()))
    }

    /// Polls (200 µs apart, like the legacy `cycles` mode) until READY,
    /// bounded to 10 s. Not a long-poll: as in allocserv, `wait=true` waits
    /// for the *next* change, so a job that became READY between the two
    /// requests would hold the poll for its full 30 s.
    fn wait_ready(&self, job: &str) -> Result<()> {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            match self.state(job, false)?.as_str() {
                "READY" => return Ok(()),
                "DESTROYED" => return Err(Error(format!("{job} was destroyed"))),
                _ => std::thread::sleep(Duration::from_micros(200)),
            }
        }
        Err(Error(format!("{job} never became READY")))
    }
}

/// `http-conc`: `clients` threads, each with its own keep-alive
/// connection, GET one READY job's state `per_client` times.
pub fn conc(t: &HttpTarget, clients: usize, per_client: usize, repeat: usize) -> Result<Value> {
    let setup = Client::new(t);
    let job = Arc::new(setup.create(&t.base)?);
    setup.wait_ready(&job)?;
    let mut pool: Vec<Client> = (0..clients.max(1)).map(|_| Client::new(t)).collect();
    for c in &pool {
        for _ in 0..20 {
            c.state(&job, false)?;
        }
    }
    let mut runs = Vec::new();
    for _ in 0..repeat.max(1) {
        let job = Arc::clone(&job);
        runs.push(concurrent_run(
            &mut pool,
            per_client,
            t.server_pid,
            move |c| c.state(&job, false).map(drop),
        )?);
    }
    setup.call("DELETE", &format!("{job}?reason=bench"), None)?;
    Ok(summarize(
        &t.label,
        &format!("v2 {clients} clients GET job state"),
        &runs,
        json!({"clients": clients, "per_client": per_client}),
    ))
}

/// `http-cycles`: create, poll until READY, delete, for `seconds`.
pub fn cycles(t: &HttpTarget, seconds: f64, repeat: usize) -> Result<Value> {
    let c = Client::new(t);
    let one = |c: &Client| -> Result<()> {
        let job = c.create(&t.base)?;
        c.wait_ready(&job)?;
        c.call("DELETE", &format!("{job}?reason=bench"), None)?;
        Ok(())
    };
    for _ in 0..5 {
        one(&c)?;
    }
    let mut runs = Vec::new();
    for _ in 0..repeat.max(1) {
        let mut lat = Vec::new();
        let c0 = maybe_cpu(t.server_pid);
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(seconds);
        while Instant::now() < end {
            let t0 = Instant::now();
            one(&c)?;
            lat.push(t0.elapsed().as_secs_f64());
        }
        let el = start.elapsed().as_secs_f64();
        let c1 = maybe_cpu(t.server_pid);
        let n = lat.len();
        runs.push(Run {
            rate: n as f64 / el,
            stats: Stats::of(&mut lat),
            cpu_us_per_call: c0.zip(c1).map(|(a, b)| (b - a) * 1e6 / n as f64),
        });
    }
    Ok(summarize(
        &t.label,
        "v2 cycles create, poll READY, delete",
        &runs,
        json!({"seconds": seconds}),
    ))
}
