//! The frame every dashboard page shares: title, navigation, who is logged
//! in, the log-out button, the style sheet and the live-update script.

use super::{JOBS_PAGE, MACHINES_PAGE};
use crate::http::auth::{Principal, Role, LOGOUT_ACTION};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};

/// A little CSS, inline so that a page is one request.
const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:0 1.5em 2em;color:#222}
nav{display:flex;gap:1.2em;align-items:center;padding:.6em 0;border-bottom:1px solid #ccc;margin-bottom:1em}
nav form{margin-left:auto}
table{border-collapse:collapse}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f0f0f0}
.map svg{max-width:100%;height:auto;border:1px solid #ddd;background:#fafafa}
.legend span{display:inline-block;padding:0 .5em;margin-right:.4em;border:1px solid #999}
button{padding:.3em .9em}
#result{padding:.4em .8em;background:#fff6d5;border:1px solid #e0c060}
fieldset{display:inline-block;margin:.3em .5em .3em 0}
";

/// A complete page around `body`.
pub fn page(title: &str, viewer: &Principal, body: Markup) -> Response {
    let csrf = viewer.csrf.as_ref().map(|c| c.value.as_str()).unwrap_or("");
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="csrf-token" content=(csrf);
                title { "spalloc: " (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                nav {
                    strong { "spalloc" }
                    a href=(MACHINES_PAGE) { "Machines" }
                    a href=(JOBS_PAGE) { "Jobs" }
                    @if viewer.role == Role::Admin { a href=(super::admin::ADMIN_PAGE) id="admin-link" { "Admin" } }
                    span { "Logged in as " b id="viewer" { (viewer.user) } " (" (viewer.role.to_string()) ")" }
                    form method="post" action=(LOGOUT_ACTION) {
                        input type="hidden" name="_csrf" value=(csrf);
                        button type="submit" id="logout" { "Log out" }
                    }
                }
                main id="live" { (body) }
                script { (PreEscaped(super::live::SCRIPT)) }
            }
        }
    };
    Html(markup.into_string()).into_response()
}
