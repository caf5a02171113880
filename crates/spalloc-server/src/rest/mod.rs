//! The v2 REST API (allocserv's user-facing API under
//! `/spalloc/srv/spalloc/`) as a sans-I/O front end over the same
//! [`Service`] the legacy protocol uses.
//!
//! The HTTP shell ([`crate::http`]) turns each request into an
//! [`ApiRequest`] (method, path, query, body, the authenticated
//! [`ApiUser`] and the base URL to build links from) and sends back the
//! [`Reply`] that [`handle`] returns. Every rule lives here or in the core:
//! routing, validation, who may see which job, status codes and JSON
//! shapes. Long-polling is split in two so the shell can wait without
//! holding the lock: [`poll_fingerprint`] says what the caller waits on, and
//! the shell calls [`handle`] once that changed or 30 s passed.
//!
//! * [`route`]: paths and methods to [`Route`]s;
//! * [`query`]: query parameters, parsed leniently where clients need it;
//! * [`create`]: the create-job request and its validation;
//! * [`jobs`], [`machines`]: the operations;
//! * [`usage`]: the caller's board-seconds and quotas;
//! * [`admin`]: allocserv's admin API (boards on the service; users and
//!   groups on the accounts database, see [`uses_accounts`]);
//! * [`board_by`]: naming a board by triad, physical location or address;
//! * [`shapes`]: the JSON shapes, as allocserv serialises them.

pub mod admin;
pub mod board_by;
pub mod board_io;
pub mod create;
pub mod duration;
pub mod jobs;
pub mod machines;
pub mod query;
pub mod route;
pub mod shapes;
pub mod time_format;
pub mod usage;

use crate::service::Service;
pub use route::{AdminRoute, Method, Route};
use serde_json::Value;

/// How long a long-poll (`wait=true`) is held at most, as allocserv's `spalloc.wait`.
pub const LONG_POLL_SECONDS: u64 = 30;

/// What an account may do, lowest first (allocserv's trust levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// May look at machines and the job list.
    Reader,
    /// May also create and control jobs.
    User,
    /// May also see and control everybody's jobs, legacy ones included.
    Admin,
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiUser {
    /// The account name: the owner of the jobs it creates.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The CSRF header name and token of its session, for the service description.
    pub csrf: Option<(String, String)>,
    /// Its groups, sorted: what its jobs may be charged to (see
    /// [`crate::core::usage`]).
    pub groups: Vec<String>,
}

impl ApiUser {
    /// Whether this caller may see and control a job owned by `owner`;
    /// `v2` says the job was created through this API (legacy jobs have an
    /// unauthenticated owner string, so only administrators see them).
    pub fn may_see_job(&self, owner: &str, v2: bool) -> bool {
        self.role == Role::Admin || (v2 && owner == self.name)
    }
}

/// One request, as the HTTP shell hands it over.
#[derive(Debug, Clone)]
pub struct ApiRequest<'a> {
    /// The method.
    pub method: Method,
    /// The path below `/spalloc/srv/spalloc`, e.g. `/jobs/3/machine`
    /// (repeated and trailing slashes are ignored).
    pub path: &'a str,
    /// The decoded query parameters, in order.
    pub query: &'a [(String, String)],
    /// The body.
    pub body: &'a [u8],
    /// Who is asking.
    pub user: &'a ApiUser,
    /// The API's own URL, e.g. `https://host/spalloc/srv/spalloc`, from
    /// which every returned link is built.
    pub base: &'a str,
    /// The caller's IP address, recorded as a job's keepalive host.
    pub host: Option<&'a str>,
}

/// A reply's body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// `application/json`.
    Json(Value),
    /// `text/plain; charset=UTF-8`: a message or `ok`.
    Text(String),
    /// Nothing (204 and 202).
    Empty,
    /// `application/octet-stream`: memory read from a board.
    Bytes(Vec<u8>),
}

/// A reply: status, body and the headers the API sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Body,
    /// `Location`, for a created job.
    pub location: Option<String>,
    /// `Link` (RFC 8288), for paged job lists.
    pub link: Option<String>,
}

impl Reply {
    /// 200 with JSON.
    pub fn json(value: Value) -> Reply {
        Reply::with(200, Body::Json(value))
    }

    /// A status with no body.
    pub fn empty(status: u16) -> Reply {
        Reply::with(status, Body::Empty)
    }

    /// A status with a text message (errors are always this).
    pub fn text(status: u16, message: impl Into<String>) -> Reply {
        Reply::with(status, Body::Text(message.into()))
    }

    pub(crate) fn with(status: u16, body: Body) -> Reply {
        Reply {
            status,
            body,
            location: None,
            link: None,
        }
    }
}

/// A request that fails: its status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// 4xx (or 204 for allocserv's "empty response").
    pub status: u16,
    /// What went wrong.
    pub message: String,
}

impl Failure {
    /// 400 with a message.
    pub fn bad(message: impl Into<String>) -> Failure {
        Failure {
            status: 400,
            message: message.into(),
        }
    }

    /// 404 with a message.
    pub fn not_found(message: impl Into<String>) -> Failure {
        Failure {
            status: 404,
            message: message.into(),
        }
    }

    /// 403 with a message.
    pub fn forbidden(message: impl Into<String>) -> Failure {
        Failure {
            status: 403,
            message: message.into(),
        }
    }

    /// allocserv's `EmptyResponse`: 204 with no body.
    pub fn empty() -> Failure {
        Failure {
            status: 204,
            message: String::new(),
        }
    }
}

impl From<Failure> for Reply {
    fn from(f: Failure) -> Reply {
        if f.status == 204 {
            Reply::empty(204)
        } else {
            Reply::text(f.status, f.message)
        }
    }
}

/// The outcome of an operation.
pub type Outcome = Result<Reply, Failure>;

/// Answers a request. Never panics on any input: bad input is a 4xx with
/// a message.
pub fn handle(service: &mut Service, request: &ApiRequest, now: f64) -> Reply {
    run(service, request, now).unwrap_or_else(Reply::from)
}

fn run(service: &mut Service, request: &ApiRequest, now: f64) -> Outcome {
    let route = route::route(request.method, request.path)?;
    route.required_role().check(request.user)?;
    let q = query::Query::new(request.query);
    match route {
        Route::Service => Ok(machines::describe_service(request)),
        Route::Machines => Ok(machines::list(service, request)),
        Route::Machine(name) => machines::describe(service, request, &name),
        Route::MachineWhereIs(name, by) => machines::where_is(service, request, &name, by, &q),
        Route::Jobs(Method::Get) => jobs::list(service, request, &q),
        Route::Jobs(_) => create::create_job(service, request, now),
        Route::Job(id, Method::Delete) => jobs::destroy(service, request, id, &q, now),
        Route::Job(id, _) => jobs::state(service, request, id, &q, now),
        Route::Keepalive(id) => jobs::keepalive(service, request, id, now),
        Route::SubMachine(id) => jobs::sub_machine(service, request, id, now),
        Route::Power(id, Method::Get) => jobs::power(service, request, id, now),
        Route::Power(id, _) => jobs::set_power(service, request, id, now),
        Route::JobChip(id) => jobs::chip(service, request, id, &q, now),
        Route::ReportIssue(id) => jobs::report_issue(service, request, id, now),
        Route::BoardIo(id) => jobs::board_io(service, request, id),
        Route::Usage => usage::usage(service, request, &q, now),
        // Refused at once if they can be; else the shell does them through
        // `board_access` (they need the network).
        Route::Memory(..) => match board_access(service, request) {
            Some(Err(reply)) => Ok(reply),
            _ => Err(admin::misrouted()),
        },
        Route::EmergencyStop => Err(Failure::forbidden(
            "emergency stop is not enabled on this server",
        )),
        Route::Admin(AdminRoute::Describe) => admin::describe(request),
        Route::Admin(AdminRoute::Import(method)) => admin::import(method),
        Route::Admin(AdminRoute::Board(method)) => {
            admin::boards::board(service, request, method, &q, now)
        }
        // The shell sends these to `admin::handle_accounts` (see `uses_accounts`).
        Route::Admin(_) => Err(admin::misrouted()),
    }
}

/// For `GET`/`POST /jobs/{id}/memory`: `Some(Ok(access))` for the shell
/// to perform (then it answers with [`board_io::read_reply`] or
/// [`board_io::write_reply`]), `Some(Err(reply))` to answer at once;
/// `None` for every other request (answered by [`handle`]).
pub fn board_access(
    service: &Service,
    request: &ApiRequest,
) -> Option<Result<board_io::MemoryAccess, Reply>> {
    let Ok(Route::Memory(id, method)) = route::route(request.method, request.path) else {
        return None;
    };
    let q = query::Query::new(request.query);
    Some(
        Route::Memory(id, method)
            .required_role()
            .check(request.user)
            .and_then(|()| board_io::memory_access(service, request, id, method == Method::Get, &q))
            .map_err(Reply::from),
    )
}

/// Whether a request is answered by [`admin::handle_accounts`] on the
/// accounts database instead of by [`handle`] on the service: the admin
/// API's user and group routes. The shell runs those without the service
/// lock and off the async runtime (setting a password hashes it).
pub fn uses_accounts(request: &ApiRequest) -> bool {
    matches!(
        route::route(request.method, request.path),
        Ok(Route::Admin(admin)) if admin.uses_accounts()
    )
}

/// What a `wait=true` request waits for a change of: `Some(fingerprint)`
/// for a long-poll the caller may make (the shell holds it until the
/// fingerprint differs, or [`LONG_POLL_SECONDS`] pass), `None` for
/// anything to answer at once (including every error).
pub fn poll_fingerprint(service: &Service, request: &ApiRequest) -> Option<u64> {
    if request.method != Method::Get {
        return None;
    }
    let q = query::Query::new(request.query);
    if !q.flag("wait").ok()? {
        return None;
    }
    let route = route::route(request.method, request.path).ok()?;
    route.required_role().check(request.user).ok()?;
    match route {
        Route::Job(id, _) => jobs::fingerprint(service, request.user, id),
        Route::Jobs(_) => Some(jobs::list_fingerprint(service, request.user)),
        Route::Machine(name) => machines::fingerprint(service, &name),
        _ => None,
    }
}

/// A hash of anything hashable, for fingerprints.
pub(crate) fn hash_of(value: impl std::hash::Hash) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}
