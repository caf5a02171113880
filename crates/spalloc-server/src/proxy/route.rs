//! The `/spalloc/proxy/{job}` route: authorises the caller, checks the job
//! (see [`super::access`]) and upgrades to a proxy websocket served by
//! [`super::socket`].
//!
//! As allocserv does: an unknown job, or one the caller may not see, is
//! refused before the upgrade (404); a live job without boards is upgraded
//! and closed at once with 1011 "job not in state where proxying
//! permitted"; every proxy of a job closes (1001) when the job is destroyed
//! or given other boards.
//!
//! Authentication is passed in ([`Authorise`]) so that the route uses
//! exactly the REST API's (session cookie with CSRF header, or bearer
//! token) without this module knowing how it works.

use super::access::{self, Lookup};
use super::frame::MAX_PAYLOAD;
use super::socket::{self, ProxySettings, CLOSE_SERVER_ERROR};
use crate::server::shared::Shared;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The route, in axum's syntax.
pub const PATH: &str = "/spalloc/proxy/{job}";

/// How often an open proxy checks that its job still has the same boards
/// when its job table gives no change signal (see [`ProxyJobs::changes`]).
pub const JOB_CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user name (compared with the job's owner).
    pub user: String,
    /// Whether the user is an admin (who may proxy to any job).
    pub admin: bool,
}

/// The REST API's authentication: the caller, or the response refusing
/// the request (401, 403...).
pub type Authorise = Arc<
    dyn Fn(Parts) -> Pin<Box<dyn Future<Output = Result<Caller, Response>> + Send>> + Send + Sync,
>;

/// Where the route finds jobs.
pub trait ProxyJobs: Send + Sync + 'static {
    /// What the job table says about `job` now.
    fn lookup(&self, job: u64) -> Lookup;

    /// A signal that changes whenever the job table may have changed, so
    /// that open proxies re-check their job only then; `None` (a job table
    /// without one) makes them check every [`JOB_CHECK_INTERVAL`].
    fn changes(&self) -> Option<watch::Receiver<u64>> {
        None
    }
}

impl ProxyJobs for Shared {
    fn lookup(&self, job: u64) -> Lookup {
        // Only reads: a lookup must not signal a change (which would wake
        // every proxy again).
        self.read(|s| access::lookup(&s.service.controller, job))
    }

    fn changes(&self) -> Option<watch::Receiver<u64>> {
        Some(self.subscribe_changes())
    }
}

/// What the route needs.
#[derive(Clone)]
pub struct ProxyState {
    /// The job table.
    pub jobs: Arc<dyn ProxyJobs>,
    /// The REST API's authentication.
    pub authorise: Authorise,
    /// Where unconnected channels bind.
    pub settings: ProxySettings,
}

/// The proxy route, to merge into the HTTP router.
pub fn routes(state: ProxyState) -> Router {
    Router::new().route(PATH, get(handle)).with_state(state)
}

async fn handle(State(state): State<ProxyState>, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    let job = match Path::<u64>::from_request_parts(&mut parts, &state).await {
        Ok(Path(job)) => job,
        Err(rejection) => return rejection.into_response(),
    };
    let caller = match (state.authorise)(parts.clone()).await {
        Ok(caller) => caller,
        Err(refusal) => return refusal,
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let found = state.jobs.lookup(job);
    let visible = found
        .owner()
        .is_some_and(|owner| access::may_proxy(owner, &caller.user, caller.admin));
    if !visible {
        return (StatusCode::NOT_FOUND, "no such job").into_response();
    }
    // A frame holds at most one datagram and five words.
    let upgrade = upgrade
        .max_message_size(MAX_PAYLOAD + 20)
        .max_frame_size(MAX_PAYLOAD + 20);
    match found {
        Lookup::Allocated(target) => {
            let jobs = Arc::clone(&state.jobs);
            let allocation = target.allocation.clone();
            let settings = state.settings;
            upgrade.on_upgrade(move |ws| async move {
                socket::serve(
                    ws,
                    target.boards,
                    settings,
                    boards_change(jobs, job, allocation),
                )
                .await;
            })
        }
        _ => upgrade.on_upgrade(|ws| {
            socket::refuse(
                ws,
                CLOSE_SERVER_ERROR,
                "job not in state where proxying permitted",
            )
        }),
    }
}

/// The `proxy-ref` of a job's state, from the job's URL
/// (`SCHEME://HOST/.../jobs/ID`): `ws://HOST/spalloc/proxy/ID`, or `wss://`
/// when the job URL is `https`. allocserv always writes `wss`; keeping the
/// request's scheme spares a plain-http client from rewriting it.
pub fn proxy_ref(job_url: &str) -> Option<String> {
    let (scheme, rest) = job_url.split_once("://")?;
    let scheme = if scheme == "https" { "wss" } else { "ws" };
    let host = rest.split('/').next().filter(|h| !h.is_empty())?;
    let id: u64 = rest.rsplit('/').next()?.parse().ok()?;
    Some(format!("{scheme}://{host}/spalloc/proxy/{id}"))
}

/// The proxy's state for the HTTP listener: its job table, and the REST
/// API's authentication (only a user may proxy; an admin to any job).
pub fn for_http(state: &crate::http::HttpState) -> ProxyState {
    let accounts = state.accounts.clone();
    let authorise: Authorise = Arc::new(move |parts: Parts| {
        let accounts = accounts.clone();
        Box::pin(async move {
            let principal = crate::http::auth::authenticate(&accounts, &parts)
                .await
                .map_err(IntoResponse::into_response)?;
            Ok(Caller {
                admin: principal.role == crate::accounts::Role::Admin,
                user: principal.user,
            })
        })
    });
    ProxyState {
        jobs: Arc::clone(&state.shared) as Arc<dyn ProxyJobs>,
        authorise,
        settings: state.proxy,
    }
}

/// Completes when `job` is no longer live with `allocation`: checked at
/// each change of the job table (or every [`JOB_CHECK_INTERVAL`] without a
/// change signal).
async fn boards_change(jobs: Arc<dyn ProxyJobs>, job: u64, allocation: (String, u64)) {
    // Subscribed before the first check, so that no change is missed.
    let mut changes = jobs.changes();
    loop {
        match jobs.lookup(job) {
            Lookup::Allocated(target) if target.allocation == allocation => {}
            _ => return,
        }
        match &mut changes {
            Some(changes) => {
                if changes.changed().await.is_err() {
                    // The server is stopping: its proxies go with it.
                    return;
                }
            }
            None => tokio::time::sleep(JOB_CHECK_INTERVAL).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// A job table that counts lookups and signals changes by hand.
    struct Table {
        lookups: AtomicUsize,
        answer: Mutex<Lookup>,
        changed: watch::Sender<u64>,
    }

    impl ProxyJobs for Table {
        fn lookup(&self, _job: u64) -> Lookup {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            self.answer
                .lock()
                .map(|a| a.clone())
                .unwrap_or(Lookup::Unknown)
        }

        fn changes(&self) -> Option<watch::Receiver<u64>> {
            Some(self.changed.subscribe())
        }
    }

    #[tokio::test]
    async fn an_open_proxy_rechecks_its_job_on_each_change_signal_and_never_polls() {
        let allocation = ("m".to_owned(), 7);
        let table = Arc::new(Table {
            lookups: AtomicUsize::new(0),
            answer: Mutex::new(Lookup::Allocated(access::ProxyTarget {
                owner: "a".into(),
                allocation: allocation.clone(),
                boards: BTreeMap::new(),
            })),
            changed: watch::Sender::new(0),
        });
        let jobs: Arc<dyn ProxyJobs> = Arc::clone(&table) as Arc<dyn ProxyJobs>;
        let ended = tokio::spawn(boards_change(jobs, 1, allocation));
        // Longer than several polling intervals: one lookup, at the start.
        tokio::time::sleep(JOB_CHECK_INTERVAL * 3).await;
        assert_eq!(table.lookups.load(Ordering::SeqCst), 1);
        assert!(!ended.is_finished());
        // A change that leaves the job alone: one more lookup, still open.
        table.changed.send_modify(|n| *n += 1);
        tokio::time::sleep(JOB_CHECK_INTERVAL).await;
        assert_eq!(table.lookups.load(Ordering::SeqCst), 2);
        assert!(!ended.is_finished());
        // The job is destroyed and the change signalled: the proxy ends.
        if let Ok(mut answer) = table.answer.lock() {
            *answer = Lookup::Unknown;
        }
        table.changed.send_modify(|n| *n += 1);
        tokio::time::timeout(Duration::from_secs(30), ended)
            .await
            .expect("the proxy ends on the signal")
            .expect("no panic");
    }

    #[test]
    fn the_proxy_ref_keeps_the_host_and_the_security_of_the_job_url() {
        assert_eq!(
            proxy_ref("http://h:9091/spalloc/srv/spalloc/jobs/12").as_deref(),
            Some("ws://h:9091/spalloc/proxy/12")
        );
        assert_eq!(
            proxy_ref("https://h/spalloc/srv/spalloc/jobs/3").as_deref(),
            Some("wss://h/spalloc/proxy/3")
        );
        assert_eq!(proxy_ref("h/jobs/3"), None);
    }
}
