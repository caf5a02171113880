//! The dashboard: server-rendered HTML pages at allocserv's addresses under
//! `/spalloc/system/` (`spalloc-v2-and-ecosystem.md` §11), readable without
//! JavaScript and kept live by a few lines of it ([`live`]).
//!
//! * [`pages`]: the machines, a machine, the jobs, a job (with its state
//!   history);
//! * [`admin`]: administrators' pages: boards in and out of service, board
//!   reports, users;
//! * [`map`]: a machine's hexagonal board map as SVG;
//! * [`layout`]: the frame every page shares (navigation, log-out);
//! * [`live`]: the "something changed" long-poll the pages wait on.
//!
//! Pages need a logged-in session (the same accounts as the API, see
//! [`crate::http::auth`]); a browser without one is sent to the log-in
//! form. Only pages redirect: the API answers 401 as SpiNNMan expects.
//! The pages read the controller under the service lock and change
//! nothing: power and destroy buttons call the REST API. Only the admin
//! pages' forms change things, through the core and the accounts.

pub mod admin;
pub mod layout;
pub mod live;
pub mod map;
pub mod pages;

use crate::http::auth::{self, Principal};
use crate::http::HttpState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The machines page.
pub const MACHINES_PAGE: &str = "/spalloc/system/list_machines";
/// A machine's page, followed by its name.
pub const MACHINE_PAGE: &str = "/spalloc/system/machine_info/";
/// The jobs page.
pub const JOBS_PAGE: &str = "/spalloc/system/list_jobs";
/// A job's page, followed by its ID.
pub const JOB_PAGE: &str = "/spalloc/system/job_info/";
/// The long-poll the pages wait on for changes.
pub const CHANGES_PATH: &str = "/spalloc/system/changes";

/// The dashboard's routes.
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route(MACHINES_PAGE, get(pages::machines))
        .route("/spalloc/system/machine_info/{name}", get(pages::machine))
        .route(JOBS_PAGE, get(pages::jobs))
        .route("/spalloc/system/job_info/{id}", get(pages::job))
        .route(CHANGES_PATH, get(live::changes))
        .merge(admin::routes())
}

/// The template of a dashboard address, for request metrics.
pub fn page_template(path: &str) -> Option<&'static str> {
    let templates = [
        (MACHINES_PAGE, false),
        (MACHINE_PAGE, true),
        (JOBS_PAGE, false),
        (JOB_PAGE, true),
        (CHANGES_PATH, false),
        (auth::LOGIN_PAGE, false),
        (auth::LOGIN_ACTION, false),
        (auth::LOGOUT_ACTION, false),
        (auth::HOME_PAGE, false),
    ];
    if let Some(t) = admin::TEMPLATES
        .into_iter()
        .find(|t| path == *t || path == t.trim_end_matches('/'))
    {
        return Some(t);
    }
    templates.into_iter().find_map(|(t, prefix)| {
        let hit = if prefix {
            path.starts_with(t)
        } else {
            path == t
        };
        hit.then_some(match t {
            MACHINE_PAGE => "/spalloc/system/machine_info/{name}",
            JOB_PAGE => "/spalloc/system/job_info/{id}",
            other => other,
        })
    })
}

/// The caller of a page, as an extractor: a request without a valid
/// session (or token) is answered by sending the browser to log in, before
/// the handler runs. Pages only: the API answers 401 instead.
pub struct Viewer(pub Principal);

impl FromRequestParts<HttpState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &HttpState) -> Result<Self, Response> {
        auth::authenticate(&state.accounts, parts)
            .await
            .map(Viewer)
            .map_err(|_| {
                (
                    StatusCode::SEE_OTHER,
                    [(header::LOCATION, auth::LOGIN_PAGE)],
                    "log in first",
                )
                    .into_response()
            })
    }
}
