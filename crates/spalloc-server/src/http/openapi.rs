//! The OpenAPI 3 description of the v2 API, served at
//! `/spalloc/srv/openapi.json` as allocserv does. It is a static document
//! (`openapi.json` beside this file); a test checks that it names every
//! route the API serves.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The document.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// `GET /spalloc/srv/openapi.json`.
pub fn response() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}
