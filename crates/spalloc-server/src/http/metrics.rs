//! The HTTP side of [`crate::metrics`]: the `/metrics` endpoint and the
//! layer that times every request, labelled by its route's template (never
//! by the raw path, which a client could vary without end).

use super::api::API_PREFIX;
use super::HttpState;
use crate::rest::route::{route, WhereBy};
use crate::rest::{Method as ApiMethod, Route};
use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;

/// Where the metrics are served (Prometheus's default path).
pub const METRICS_PATH: &str = "/metrics";

/// `GET /metrics`. Not authenticated, as Prometheus scrapes expect: it
/// names machines but no users or jobs.
pub async fn scrape(State(state): State<HttpState>) -> Response {
    let http = crate::metrics::HttpFacts {
        long_polls_waiting: state
            .long_poll_limit
            .saturating_sub(state.long_polls.available_permits()),
        open_connections: state.connections.count(),
    };
    let text = crate::metrics::render(&state.shared, http, crate::clock::now());
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
}

/// Times a request from its headers to its response.
pub async fn time_request(request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let endpoint = endpoint_label(request.method(), request.uri().path());
    let started = Instant::now();
    let response = next.run(request).await;
    crate::metrics::events::global().http_request(method, endpoint, started.elapsed());
    response
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        _ => "other",
    }
}

/// The template of the route a request goes to.
pub fn endpoint_label(method: &Method, path: &str) -> &'static str {
    if let Some(api_path) = path.strip_prefix(API_PREFIX) {
        let api_method = match *method {
            Method::GET | Method::HEAD => ApiMethod::Get,
            Method::POST => ApiMethod::Post,
            Method::PUT => ApiMethod::Put,
            Method::DELETE => ApiMethod::Delete,
            _ => ApiMethod::Other,
        };
        return match route(api_method, api_path) {
            Ok(r) => api_template(&r),
            Err(_) if api_path.trim_matches('/').starts_with("tokens") => {
                "/spalloc/srv/spalloc/tokens"
            }
            Err(_) => "other",
        };
    }
    if path == METRICS_PATH {
        return METRICS_PATH;
    }
    crate::web::page_template(path).unwrap_or("other")
}

fn api_template(r: &Route) -> &'static str {
    match r {
        Route::Service => "/spalloc/srv/spalloc/",
        Route::Machines => "/spalloc/srv/spalloc/machines",
        Route::Machine(_) => "/spalloc/srv/spalloc/machines/{name}",
        Route::MachineWhereIs(_, WhereBy::Logical) => {
            "/spalloc/srv/spalloc/machines/{name}/logical-board"
        }
        Route::MachineWhereIs(_, WhereBy::Physical) => {
            "/spalloc/srv/spalloc/machines/{name}/physical-board"
        }
        Route::MachineWhereIs(_, WhereBy::Chip) => "/spalloc/srv/spalloc/machines/{name}/chip",
        Route::MachineWhereIs(_, WhereBy::Address) => {
            "/spalloc/srv/spalloc/machines/{name}/board-ip"
        }
        Route::Jobs(_) => "/spalloc/srv/spalloc/jobs",
        Route::Job(..) => "/spalloc/srv/spalloc/jobs/{id}",
        Route::Keepalive(_) => "/spalloc/srv/spalloc/jobs/{id}/keepalive",
        Route::SubMachine(_) => "/spalloc/srv/spalloc/jobs/{id}/machine",
        Route::Power(..) => "/spalloc/srv/spalloc/jobs/{id}/machine/power",
        Route::JobChip(_) => "/spalloc/srv/spalloc/jobs/{id}/chip",
        Route::ReportIssue(_) => "/spalloc/srv/spalloc/jobs/{id}/report-issue",
        Route::Memory(..) => "/spalloc/srv/spalloc/jobs/{id}/memory",
        Route::BoardIo(_) => "/spalloc/srv/spalloc/jobs/{id}/{board-io}",
        Route::EmergencyStop => "/spalloc/srv/spalloc/emergencyStop",
        Route::Usage => "/spalloc/srv/spalloc/usage",
        Route::Admin(a) => admin_template(a),
    }
}

fn admin_template(a: &crate::rest::AdminRoute) -> &'static str {
    use crate::rest::AdminRoute;
    match a {
        AdminRoute::Describe => "/spalloc/srv/spalloc/admin",
        AdminRoute::Import(_) => "/spalloc/srv/spalloc/admin/import",
        AdminRoute::Board(_) => "/spalloc/srv/spalloc/admin/board",
        AdminRoute::Users(_) => "/spalloc/srv/spalloc/admin/users",
        AdminRoute::User(..) => "/spalloc/srv/spalloc/admin/users/{name}",
        AdminRoute::Groups(_) => "/spalloc/srv/spalloc/admin/groups",
        AdminRoute::Group(..) => "/spalloc/srv/spalloc/admin/groups/{name}",
        AdminRoute::Members(_) => "/spalloc/srv/spalloc/admin/groups/{name}/members",
        AdminRoute::Member(..) => "/spalloc/srv/spalloc/admin/groups/{name}/members/{user}",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_are_labelled_by_their_route_and_unknown_paths_as_other() {
        assert_eq!(
            endpoint_label(&Method::GET, "/spalloc/srv/spalloc/jobs//17/"),
            "/spalloc/srv/spalloc/jobs/{id}"
        );
        assert_eq!(
            endpoint_label(&Method::POST, "/spalloc/srv/spalloc/jobs/17/machine/power"),
            "/spalloc/srv/spalloc/jobs/{id}/machine/power"
        );
        assert_eq!(endpoint_label(&Method::GET, "/no/such/thing/42"), "other");
    }
}
