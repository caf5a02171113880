//! Paths and methods to routes, with allocserv's paths. Empty segments are
//! dropped, so trailing slashes and `//` (SpiNNMan's `get_job` asks for
//! `jobs//ID/`) reach the same route.

use super::{Failure, Role};
use crate::rest::ApiUser;

/// The HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET (and HEAD).
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
    /// Anything else.
    Other,
}

/// Which lookup a machine's where-is endpoint does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhereBy {
    /// `logical-board?x&y&z`.
    Logical,
    /// `physical-board?cabinet&frame&board`.
    Physical,
    /// `chip?x&y`.
    Chip,
    /// `board-ip?address`.
    Address,
}

/// An endpoint, with the parts of the path it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /`.
    Service,
    /// `GET /machines`.
    Machines,
    /// `GET /machines/{name}`.
    Machine(String),
    /// `GET /machines/{name}/{lookup}`.
    MachineWhereIs(String, WhereBy),
    /// `GET` or `POST /jobs`.
    Jobs(Method),
    /// `GET` or `DELETE /jobs/{id}`.
    Job(u64, Method),
    /// `PUT /jobs/{id}/keepalive`.
    Keepalive(u64),
    /// `GET /jobs/{id}/machine`.
    SubMachine(u64),
    /// `GET` or `POST /jobs/{id}/machine/power`.
    Power(u64, Method),
    /// `GET /jobs/{id}/chip`.
    JobChip(u64),
    /// `POST /jobs/{id}/report-issue`.
    ReportIssue(u64),
    /// `GET` or `POST /jobs/{id}/memory`: a chip's memory, through the
    /// server (see [`crate::rest::board_io`]).
    Memory(u64, Method),
    /// `fast-data-read`, `fast-data-write`, `router`: board I/O through the
    /// server that this server does not do.
    BoardIo(u64),
    /// `GET /emergencyStop`.
    EmergencyStop,
    /// `GET /usage`: the caller's board-seconds (see [`super::usage`]).
    Usage,
    /// Under `/admin`: allocserv's admin API (administrators only).
    Admin(AdminRoute),
}

/// An endpoint of the admin API (allocserv's `AdminAPI`), below `/admin`.
/// Users, groups and members are named in paths by their names, which are
/// unique (allocserv uses numeric IDs; a client following the returned
/// links never sees the difference).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminRoute {
    /// `GET /admin`: links to the other resources.
    Describe,
    /// `GET` or `POST /admin/import`: machine definitions.
    Import(Method),
    /// `GET` or `PUT /admin/board`: a board's enabled state.
    Board(Method),
    /// `GET` or `POST /admin/users`.
    Users(Method),
    /// `GET`, `PUT` or `DELETE /admin/users/{name}`.
    User(String, Method),
    /// `GET` or `POST /admin/groups`.
    Groups(Method),
    /// `GET`, `PUT` or `DELETE /admin/groups/{name}`.
    Group(String, Method),
    /// `POST /admin/groups/{name}/members`.
    Members(String),
    /// `GET` or `DELETE /admin/groups/{name}/members/{user}`.
    Member(String, String, Method),
}

impl AdminRoute {
    /// Whether it works on the accounts database rather than the service
    /// (the shell runs those off the service lock: a password is hashed).
    pub fn uses_accounts(&self) -> bool {
        !matches!(
            self,
            AdminRoute::Describe | AdminRoute::Import(_) | AdminRoute::Board(_)
        )
    }
}

impl Route {
    /// The least role that may call it (allocserv's `@PreAuthorize`).
    pub fn required_role(&self) -> RoleRequirement {
        RoleRequirement(match self {
            Route::Service | Route::EmergencyStop => Role::Reader,
            Route::Machines | Route::Machine(_) | Route::MachineWhereIs(..) => Role::Reader,
            Route::Jobs(Method::Get) | Route::Usage => Role::Reader,
            Route::Admin(_) => Role::Admin,
            _ => Role::User,
        })
    }
}

/// A minimum role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleRequirement(pub Role);

impl RoleRequirement {
    /// 403 unless the user has at least this role.
    pub fn check(self, user: &ApiUser) -> Result<(), Failure> {
        if user.role >= self.0 {
            Ok(())
        } else {
            Err(Failure::forbidden(
                "your account may not do this (its role is too low)",
            ))
        }
    }
}

/// Finds the route for a method and path (below the API prefix).
pub fn route(method: Method, path: &str) -> Result<Route, Failure> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let not_found = || Failure::not_found(format!("no such resource: {path}"));
    let allow = |route: Route, allowed: &[Method]| allowed_method(method, path, route, allowed);
    use Method::*;
    match segments.as_slice() {
        [] => allow(Route::Service, &[Get]),
        ["emergencyStop"] => allow(Route::EmergencyStop, &[Get]),
        ["usage"] => allow(Route::Usage, &[Get]),
        ["machines"] => allow(Route::Machines, &[Get]),
        ["machines", name] => allow(Route::Machine(decoded(name)?), &[Get]),
        ["machines", name, lookup] => {
            let by = match *lookup {
                "logical-board" => WhereBy::Logical,
                "physical-board" => WhereBy::Physical,
                "chip" => WhereBy::Chip,
                "board-ip" => WhereBy::Address,
                _ => return Err(not_found()),
            };
            allow(Route::MachineWhereIs(decoded(name)?, by), &[Get])
        }
        ["jobs"] => allow(Route::Jobs(method), &[Get, Post]),
        ["jobs", id, rest @ ..] => {
            let id = job_id(id)?;
            match rest {
                [] => allow(Route::Job(id, method), &[Get, Delete]),
                ["keepalive"] => allow(Route::Keepalive(id), &[Put]),
                ["machine"] => allow(Route::SubMachine(id), &[Get]),
                ["machine", "power"] => allow(Route::Power(id, method), &[Get, Post]),
                ["chip"] => allow(Route::JobChip(id), &[Get]),
                ["report-issue"] => allow(Route::ReportIssue(id), &[Post]),
                ["memory"] => allow(Route::Memory(id, method), &[Get, Post]),
                ["fast-data-read"] => allow(Route::BoardIo(id), &[Get]),
                ["fast-data-write"] => allow(Route::BoardIo(id), &[Post]),
                ["router"] => allow(Route::BoardIo(id), &[Delete]),
                _ => Err(not_found()),
            }
        }
        ["admin", rest @ ..] => admin_route(method, path, rest).map(Route::Admin),
        _ => Err(not_found()),
    }
}

/// `value` if `method` is one of `allowed`, else 405.
fn allowed_method<T>(
    method: Method,
    path: &str,
    value: T,
    allowed: &[Method],
) -> Result<T, Failure> {
    if allowed.contains(&method) {
        Ok(value)
    } else {
        Err(Failure {
            status: 405,
            message: format!("{method:?} is not allowed on {path}"),
        })
    }
}

/// The admin API's routes (`segments` are those after `admin`).
fn admin_route(method: Method, path: &str, segments: &[&str]) -> Result<AdminRoute, Failure> {
    use Method::*;
    let allow =
        |route: AdminRoute, allowed: &[Method]| allowed_method(method, path, route, allowed);
    match segments {
        [] => allow(AdminRoute::Describe, &[Get]),
        ["import"] => allow(AdminRoute::Import(method), &[Get, Post]),
        ["board"] => allow(AdminRoute::Board(method), &[Get, Put]),
        ["users"] => allow(AdminRoute::Users(method), &[Get, Post]),
        ["users", name] => allow(
            AdminRoute::User(decoded(name)?, method),
            &[Get, Put, Delete],
        ),
        ["groups"] => allow(AdminRoute::Groups(method), &[Get, Post]),
        ["groups", name] => allow(
            AdminRoute::Group(decoded(name)?, method),
            &[Get, Put, Delete],
        ),
        ["groups", name, "members"] => allow(AdminRoute::Members(decoded(name)?), &[Post]),
        ["groups", name, "members", user] => allow(
            AdminRoute::Member(decoded(name)?, decoded(user)?, method),
            &[Get, Delete],
        ),
        _ => Err(Failure::not_found(format!("no such resource: {path}"))),
    }
}

/// A path segment naming something (a machine, user or group), percent-decoded as JAX-RS
/// does for `@PathParam`: a client that escapes `-` or a space in a
/// machine's name must reach the same machine.
fn decoded(segment: &str) -> Result<String, Failure> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map(|name| name.into_owned())
        .map_err(|_| Failure::not_found(format!("no such resource: {segment:?} is not UTF-8")))
}

/// A job ID from the path: allocserv's `@Positive int`.
fn job_id(text: &str) -> Result<u64, Failure> {
    match text.parse::<u64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(Failure::not_found(format!(
            "no such job: {text:?} (job IDs are positive integers)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_and_doubled_slashes_reach_the_same_job() {
        for path in ["/jobs/7", "/jobs/7/", "/jobs//7/", "jobs/7"] {
            assert_eq!(route(Method::Get, path), Ok(Route::Job(7, Method::Get)));
        }
        assert_eq!(route(Method::Get, "/"), Ok(Route::Service));
        assert_eq!(route(Method::Get, ""), Ok(Route::Service));
        assert_eq!(
            route(Method::Post, "/jobs/7/machine/power/"),
            Ok(Route::Power(7, Method::Post))
        );
    }

    #[test]
    fn machine_names_in_paths_are_percent_decoded() {
        assert_eq!(
            route(Method::Get, "/machines/test%2Dmachine"),
            Ok(Route::Machine("test-machine".into()))
        );
        assert_eq!(
            route(Method::Get, "/machines/my%20machine/chip"),
            Ok(Route::MachineWhereIs("my machine".into(), WhereBy::Chip))
        );
        assert_eq!(route(Method::Get, "/machines/%FF").unwrap_err().status, 404);
    }

    #[test]
    fn admin_paths_name_users_groups_and_members_by_percent_decoded_names() {
        assert_eq!(
            route(Method::Get, "/admin/"),
            Ok(Route::Admin(AdminRoute::Describe))
        );
        assert_eq!(
            route(Method::Put, "/admin/board"),
            Ok(Route::Admin(AdminRoute::Board(Method::Put)))
        );
        assert_eq!(
            route(Method::Delete, "/admin/users/a%40b"),
            Ok(Route::Admin(AdminRoute::User("a@b".into(), Method::Delete)))
        );
        assert_eq!(
            route(Method::Get, "/admin/groups/crew/members/bob/"),
            Ok(Route::Admin(AdminRoute::Member(
                "crew".into(),
                "bob".into(),
                Method::Get
            )))
        );
        assert_eq!(
            route(Method::Post, "/admin/groups/crew/members"),
            Ok(Route::Admin(AdminRoute::Members("crew".into())))
        );
        assert_eq!(route(Method::Post, "/admin/board").unwrap_err().status, 405);
        assert_eq!(route(Method::Get, "/admin/nope").unwrap_err().status, 404);
        let admin = route(Method::Get, "/admin/users").expect("routes");
        assert_eq!(admin.required_role(), RoleRequirement(Role::Admin));
        assert!(matches!(admin, Route::Admin(a) if a.uses_accounts()));
        assert!(!AdminRoute::Board(Method::Get).uses_accounts());
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        assert_eq!(route(Method::Get, "/nope").unwrap_err().status, 404);
        assert_eq!(route(Method::Get, "/jobs/0").unwrap_err().status, 404);
        assert_eq!(route(Method::Get, "/jobs/-1").unwrap_err().status, 404);
        assert_eq!(
            route(Method::Get, "/jobs/99999999999999999999999")
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(route(Method::Put, "/jobs").unwrap_err().status, 405);
        assert_eq!(
            route(Method::Get, "/jobs/1/keepalive").unwrap_err().status,
            405
        );
    }
}
