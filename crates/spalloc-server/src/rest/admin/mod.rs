//! allocserv's admin API (`AdminAPI`, under `/spalloc/srv/spalloc/admin`,
//! administrators only): the description, a board's enabled state, and the
//! administration of users, groups and group members.
//!
//! Same paths, methods, JSON names (kebab-case) and messages as allocserv,
//! with these deliberate differences:
//!
//! * users, groups and members are named in paths by name, not by a
//!   numeric ID (names are unique here, and the listings return the links);
//!   the records therefore carry no `user-id`, `group-id` or member `id`;
//! * `POST /import` answers 501: machines come from the configuration
//!   file, reloaded with SIGHUP, so that the file stays the one truth (the
//!   message names `spalloc-server machine import`, which turns the JSON
//!   allocserv takes here into that file);
//! * a user cannot be renamed (jobs record their owner by name), groups
//!   have no quota, and only READER, USER and ADMIN trust levels exist;
//! * what allocserv silently ignores is refused with a 400 saying why: an
//!   administrator changing their own role, enabled or locked state, or
//!   deleting their own account; creating an existing user is 409 (allocserv:
//!   304).
//!
//! Board operations run on the [`Service`] under its lock like every other
//! route ([`boards`]); account operations run on the [`Accounts`] database
//! ([`users`], [`groups`]), which the shell calls off the service lock and
//! off the async runtime (setting a password hashes it).

pub mod boards;
pub mod groups;
pub mod users;

use super::route::{self, AdminRoute, Route};
use super::{ApiRequest, Failure, Outcome, Reply};
use crate::accounts::{Accounts, AccountsError};
use serde_json::json;

/// `GET /admin`: where the other resources are.
pub fn describe(request: &ApiRequest) -> Outcome {
    let admin = admin_url(request.base);
    Ok(Reply::json(json!({
        "import-machines": format!("{admin}/import"),
        "set-board-enabled": format!("{admin}/board"),
    })))
}

/// `GET` and `POST /admin/import`: machines are not imported over HTTP.
pub fn import(method: route::Method) -> Outcome {
    match method {
        route::Method::Get => Ok(Reply::text(200, "This resource only really supports POST.")),
        _ => Err(Failure {
            status: 501,
            message: "this server does not import machine definitions over HTTP: machines are \
                      defined in its configuration file; edit it and send the server SIGHUP \
                      (`spalloc-server machine import FILE.json` prints this JSON as that file)"
                .into(),
        }),
    }
}

/// The admin API's own URL.
pub fn admin_url(base: &str) -> String {
    format!("{base}/admin")
}

/// Percent-encodes a name for a path segment (names may hold `@`, `+` and
/// letters outside ASCII).
pub fn path_segment(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
        // Unreserved characters need no escape; leaving them reads better.
        .replace("%2E", ".")
        .replace("%2D", "-")
        .replace("%5F", "_")
}

/// Answers a request whose route uses the accounts database (see
/// [`AdminRoute::uses_accounts`]), with the same routing and role check as
/// [`super::handle`]. Never panics on any input.
pub fn handle_accounts(accounts: &Accounts, request: &ApiRequest, now: i64) -> Reply {
    let run = || -> Outcome {
        let route = route::route(request.method, request.path)?;
        route.required_role().check(request.user)?;
        match route {
            Route::Admin(admin) => match admin {
                AdminRoute::Users(route::Method::Get) => users::list(accounts, request, now),
                AdminRoute::Users(_) => users::create(accounts, request, now),
                AdminRoute::User(name, route::Method::Get) => {
                    users::describe(accounts, request, &name, now)
                }
                AdminRoute::User(name, route::Method::Delete) => {
                    users::delete(accounts, request, &name)
                }
                AdminRoute::User(name, _) => users::update(accounts, request, &name, now),
                AdminRoute::Groups(route::Method::Get) => groups::list(accounts, request),
                AdminRoute::Groups(_) => groups::create(accounts, request, now),
                AdminRoute::Group(name, route::Method::Get) => {
                    groups::describe(accounts, request, &name)
                }
                AdminRoute::Group(name, route::Method::Delete) => groups::delete(accounts, &name),
                AdminRoute::Group(name, _) => groups::update(accounts, request, &name),
                AdminRoute::Members(group) => groups::add_member(accounts, request, &group),
                AdminRoute::Member(group, user, route::Method::Get) => {
                    groups::describe_member(accounts, request, &group, &user)
                }
                AdminRoute::Member(group, user, _) => {
                    groups::remove_member(accounts, &group, &user)
                }
                AdminRoute::Describe | AdminRoute::Import(_) | AdminRoute::Board(_) => {
                    Err(misrouted())
                }
            },
            _ => Err(misrouted()),
        }
    };
    run().unwrap_or_else(Reply::from)
}

/// A request handed to the wrong handler: a bug in the shell, never the
/// client's doing.
pub(crate) fn misrouted() -> Failure {
    Failure {
        status: 500,
        message: "internal error: this request was sent to the wrong handler".into(),
    }
}

/// An accounts error as the client sees it: unknown names are 404,
/// clashes 409, bad names and passwords 400, the database failing 503.
pub(crate) fn account_failure(e: AccountsError) -> Failure {
    let status = match &e {
        AccountsError::NoSuchUser(_) | AccountsError::NoSuchGroup(_) => 404,
        AccountsError::UserExists(_) => 409,
        AccountsError::GroupExists(_) | AccountsError::BadName(_) | AccountsError::Password(_) => {
            400
        }
        AccountsError::Sqlite(_) | AccountsError::Internal(_) => 503,
    };
    Failure {
        status,
        message: e.to_string(),
    }
}

/// Parses a JSON body, with serde's message (which names the field).
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Failure> {
    super::jobs::json_body(body)
}

#[cfg(test)]
mod tests;
