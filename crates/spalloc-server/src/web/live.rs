//! Live pages: `GET /spalloc/system/changes?since=N` answers the server's
//! change revision at once without `since` (or when it differs from
//! `since`), and otherwise waits until it changes (at most
//! [`WAIT_SECONDS`]). The revision is a [`fingerprint`] of what the pages
//! show, read without a flush (which would itself signal a change). [`SCRIPT`] loops on it and, on a change, fetches the
//! page again and swaps its `<main>`: a board taken or freed shows within a
//! round trip, and a page without JavaScript is still whole.
//!
//! The waits share the REST API's long-poll places, so open dashboards
//! cannot hold more of the server than `[http] max_long_polls`.

use super::Viewer;
use crate::core::controller::Controller;
use crate::http::HttpState;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

/// The longest a change request is held.
pub const WAIT_SECONDS: u64 = 25;

/// The query of a change request.
#[derive(Debug, Deserialize)]
pub struct Since {
    since: Option<u64>,
}

/// `GET /spalloc/system/changes`.
pub async fn changes(
    State(state): State<HttpState>,
    Query(since): Query<Since>,
    _viewer: Viewer,
) -> Response {
    let mut signal = state.shared.subscribe_changes();
    signal.borrow_and_update();
    let current = state.shared.read(|s| fingerprint(&s.service.controller));
    if since.since != Some(current) {
        return revision(current);
    }
    let Ok(_place) = state.long_polls.clone().try_acquire_owned() else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "too many waiting; retry later",
        )
            .into_response();
    };
    // The signal also fires for changes no page shows (keepalives, commit
    // reports, ticks): wait until what the pages show is different.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(WAIT_SECONDS);
    loop {
        match tokio::time::timeout_at(deadline, signal.changed()).await {
            Ok(Ok(())) => {
                signal.borrow_and_update();
                let now = state.shared.read(|s| fingerprint(&s.service.controller));
                if now != current {
                    return revision(now);
                }
            }
            _ => return revision(current),
        }
    }
}

/// A digest of what the pages show: the machines' dead boards and links
/// and boards out of service, and every live job's state, power, owner
/// and boards.
pub fn fingerprint(controller: &Controller) -> u64 {
    let mut h = DefaultHasher::new();
    for m in controller.machines() {
        (
            &m.name,
            m.dead_boards.len(),
            m.dead_links.len(),
            controller.boards_out_of_service(&m.name),
        )
            .hash(&mut h);
    }
    for j in controller.live_jobs() {
        (j.id, j.state.to_wire(), j.power, &j.owner).hash(&mut h);
        if let Some(a) = &j.allocation {
            (&a.machine, &a.boards).hash(&mut h);
        }
    }
    h.finish()
}

fn revision(r: u64) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        r.to_string(),
    )
        .into_response()
}

/// The pages' script: follow changes, refresh `<main id="live">`, and send
/// the API calls of buttons marked `data-method`/`data-url` with the
/// session's CSRF token.
pub const SCRIPT: &str = r#"
(function () {
  var rev = null;
  function refresh() {
    return fetch(location.href, {credentials: 'same-origin'})
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, 'text/html').getElementById('live');
        var old = document.getElementById('live');
        if (fresh && old) { old.replaceWith(fresh); }
        document.dispatchEvent(new Event('spalloc:refreshed'));
      });
  }
  function poll() {
    var url = '/spalloc/system/changes' + (rev === null ? '' : '?since=' + rev);
    fetch(url, {credentials: 'same-origin', cache: 'no-store'})
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (text) {
        var changed = rev !== null && text !== rev;
        rev = text;
        return changed ? refresh() : null;
      })
      .then(poll, function () { setTimeout(poll, 2000); });
  }
  document.addEventListener('click', function (e) {
    var b = e.target.closest('button[data-url]');
    if (!b) { return; }
    if (b.dataset.confirm && !confirm(b.dataset.confirm)) { return; }
    var meta = document.querySelector('meta[name="csrf-token"]');
    var headers = {'X-CSRF-TOKEN': meta ? meta.content : ''};
    if (b.dataset.body) { headers['Content-Type'] = 'application/json'; }
    fetch(b.dataset.url, {method: b.dataset.method, credentials: 'same-origin',
                          headers: headers, body: b.dataset.body || undefined})
      .then(function (r) {
        var out = document.getElementById('action-result');
        if (out) { out.textContent = r.ok ? 'done' : 'refused: HTTP ' + r.status; }
        return refresh();
      });
  });
  poll();
})();
"#;
