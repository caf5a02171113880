//! The administrators' pages, at allocserv's addresses under
//! `/spalloc/system/admin/` (its `AdminController`): boards in and out of
//! service ([`boards`]), the board issue reports users sent, and the users
//! ([`users`]).
//!
//! They are plain HTML forms, so they work without JavaScript: each form
//! posts the session's CSRF token as a `_csrf` field (as the log-out form
//! does), which [`AdminForm`] checks as if it were the `X-CSRF-TOKEN`
//! header. Only administrators see them: anyone else gets a 403 page, and
//! a browser without a session is sent to log in, as by every page.
//!
//! The pages hold no rules of their own: boards go in and out of service
//! through the core's [`Controller::set_board_in_service`] under the service
//! lock, and users change through [`crate::accounts`].
//!
//! [`Controller::set_board_in_service`]: crate::core::controller::Controller::set_board_in_service

pub mod boards;
pub mod users;

use super::{layout, Viewer};
use crate::http::auth::{self, AuthRejection, Principal, Role, CSRF_HEADER};
use crate::http::HttpState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::html;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// The administrators' index page.
pub const ADMIN_PAGE: &str = "/spalloc/system/admin/";
/// Boards in and out of service.
pub const BOARDS_PAGE: &str = "/spalloc/system/admin/boards";
/// The board issue reports.
pub const REPORTS_PAGE: &str = "/spalloc/system/admin/reports";
/// The users.
pub const USERS_PAGE: &str = "/spalloc/system/admin/users";
/// The form that adds a user.
pub const CREATE_USER_PAGE: &str = "/spalloc/system/admin/create-user";

/// The largest admin form accepted (a form is a few short fields).
const MAX_FORM_BYTES: usize = 16 * 1024;

/// The admin routes.
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route(ADMIN_PAGE, get(index))
        .route("/spalloc/system/admin", get(index))
        .route(BOARDS_PAGE, get(boards::page).post(boards::change))
        .route(REPORTS_PAGE, get(boards::reports))
        .route(USERS_PAGE, get(users::page).post(users::change))
        .route(
            CREATE_USER_PAGE,
            get(users::create_form).post(users::create),
        )
}

/// The admin pages' address templates, for request metrics.
pub const TEMPLATES: [&str; 5] = [
    ADMIN_PAGE,
    BOARDS_PAGE,
    REPORTS_PAGE,
    USERS_PAGE,
    CREATE_USER_PAGE,
];

/// An administrator viewing a page. Anyone else logged in gets a 403 page.
pub struct Admin(pub Principal);

impl FromRequestParts<HttpState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &HttpState) -> Result<Self, Response> {
        let Viewer(viewer) = Viewer::from_request_parts(parts, state).await?;
        if viewer.role == Role::Admin {
            Ok(Admin(viewer))
        } else {
            Err(forbidden(&viewer))
        }
    }
}

/// The 403 page.
fn forbidden(viewer: &Principal) -> Response {
    let body = html! {
        h1 { "Administrators only" }
        p id="forbidden" { "This page is for administrators; you are logged in as "
            (viewer.user) " (" (viewer.role.to_string()) ")." }
    };
    (
        StatusCode::FORBIDDEN,
        layout::page("administrators only", viewer, body),
    )
        .into_response()
}

/// The CSRF field every admin form carries.
#[derive(Debug, Default, Deserialize)]
struct CsrfField {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

/// A form posted by an administrator: the session (with the form's
/// `_csrf` field standing in for the CSRF header), the admin role, then
/// the fields as `T`. A browser without a session is sent to log in, a
/// wrong token gets 403, a non-administrator the 403 page, and a
/// malformed form 400.
pub struct AdminForm<T>(pub Principal, pub T);

impl<T: DeserializeOwned> FromRequest<HttpState> for AdminForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &HttpState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response())?;
        let field: CsrfField = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
        if let (Some(token), Ok(name)) =
            (field.csrf, HeaderName::from_bytes(CSRF_HEADER.as_bytes()))
        {
            if let Ok(value) = HeaderValue::from_str(&token) {
                parts.headers.entry(name).or_insert(value);
            }
        }
        let principal = match auth::authenticate(&state.accounts, &parts).await {
            Ok(p) => p,
            Err(e @ (AuthRejection::Csrf | AuthRejection::Unavailable)) => {
                return Err(e.into_response())
            }
            Err(_) => {
                return Err((
                    StatusCode::SEE_OTHER,
                    [(header::LOCATION, auth::LOGIN_PAGE)],
                    "log in first",
                )
                    .into_response())
            }
        };
        if principal.role != Role::Admin {
            return Err(forbidden(&principal));
        }
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad form: {e}")).into_response())?;
        Ok(AdminForm(principal, form))
    }
}

/// The CSRF token to put in a page's forms (empty for credentials that
/// need none).
pub fn csrf(viewer: &Principal) -> &str {
    viewer.csrf.as_ref().map_or("", |c| c.value.as_str())
}

/// The hidden `_csrf` input of a form.
pub fn csrf_input(viewer: &Principal) -> maud::Markup {
    html! { input type="hidden" name="_csrf" value=(csrf(viewer)); }
}

/// `GET /spalloc/system/admin/`.
pub async fn index(Admin(viewer): Admin) -> Response {
    let body = html! {
        h1 { "Administration" }
        ul id="admin" {
            li { a href=(BOARDS_PAGE) { "Boards" } ": take boards out of service and back" }
            li { a href=(REPORTS_PAGE) { "Board reports" } ": problems users reported" }
            li { a href=(USERS_PAGE) { "Users" } ": add users, change roles, enable and disable accounts" }
        }
    };
    layout::page("administration", &viewer, body)
}
