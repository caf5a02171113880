//! The users (allocserv's admin `users` and `create-user` pages): list
//! them, add one with a password, change a role, disable or enable an
//! account, clear a lock-out. Everything goes through [`crate::accounts`],
//! on a blocking thread (SQLite, and Argon2 for a new password).
//!
//! An administrator cannot disable or demote themselves here, so that the
//! last administrator cannot lock everyone out by a slip of the mouse (the
//! `spalloc-server user` command can still do it deliberately).

use super::{csrf_input, layout, Admin, AdminForm, CREATE_USER_PAGE, USERS_PAGE};
use crate::accounts::{Accounts, AccountsError, NewUser, Role, UnixSeconds, UserInfo};
use crate::http::auth::Principal;
use crate::http::HttpState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

fn now() -> UnixSeconds {
    crate::clock::now() as UnixSeconds
}

/// Runs an accounts operation on a blocking thread.
async fn off_runtime<R: Send + 'static>(
    accounts: &Accounts,
    f: impl FnOnce(&Accounts) -> Result<R, AccountsError> + Send + 'static,
) -> Result<R, AccountsError> {
    let accounts = accounts.clone();
    tokio::task::spawn_blocking(move || f(&accounts))
        .await
        .map_err(|e| AccountsError::Internal(e.to_string()))?
}

/// `GET /spalloc/system/admin/users`.
pub async fn page(State(state): State<HttpState>, Admin(viewer): Admin) -> Response {
    users_page(&state, &viewer, StatusCode::OK, None).await
}

async fn users_page(
    state: &HttpState,
    viewer: &Principal,
    status: StatusCode,
    message: Option<String>,
) -> Response {
    let users = match off_runtime(&state.accounts, |a| a.users(now())).await {
        Ok(users) => users,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot read the users: {e}"),
            )
                .into_response()
        }
    };
    (
        status,
        layout::page("users", viewer, list(&users, viewer, message.as_deref())),
    )
        .into_response()
}

fn role_select(current: Role) -> Markup {
    html! {
        select name="role" {
            @for role in Role::ALL {
                option value=(role.as_str()) selected[role == current] { (role.as_str()) }
            }
        }
    }
}

fn list(users: &[UserInfo], viewer: &Principal, message: Option<&str>) -> Markup {
    html! {
        h1 { "Users" }
        @if let Some(m) = message { p id="result" { (m) } }
        p { a href=(CREATE_USER_PAGE) id="create-user" { "Add a user" } }
        table id="users" {
            tr { th { "Name" } th { "Role" } th { "Groups" } th { "Log-in" } th { "Account" } th { "Created" } }
            @for u in users {
                @let name = &u.identity.user;
                @let me = *name == viewer.user;
                tr data-user=(name) {
                    td { (name) }
                    td {
                        form method="post" action=(USERS_PAGE) {
                            (csrf_input(viewer))
                            input type="hidden" name="name" value=(name);
                            input type="hidden" name="action" value="role";
                            (role_select(u.identity.role)) " "
                            button type="submit" class="set-role" disabled[me] { "Change" }
                        }
                    }
                    td { (u.identity.groups.join(", ")) }
                    td { (if u.has_password { "password or token" } else { "tokens only" }) }
                    td {
                        @if u.disabled { "disabled " } @else { "enabled " }
                        @if let Some(until) = u.locked_until {
                            "(locked until " (crate::web::pages::time(until as f64)) ", "
                            (u.failures) " failures) "
                        }
                        form method="post" action=(USERS_PAGE) style="display:inline" {
                            (csrf_input(viewer))
                            input type="hidden" name="name" value=(name);
                            @if u.disabled {
                                input type="hidden" name="action" value="enable";
                                button type="submit" class="enable" { "Enable" }
                            } @else {
                                input type="hidden" name="action" value="disable";
                                button type="submit" class="disable" disabled[me] { "Disable" }
                            }
                        }
                        @if u.locked_until.is_some() {
                            " "
                            form method="post" action=(USERS_PAGE) style="display:inline" {
                                (csrf_input(viewer))
                                input type="hidden" name="name" value=(name);
                                input type="hidden" name="action" value="unlock";
                                button type="submit" class="unlock" { "Unlock" }
                            }
                        }
                    }
                    td { (crate::web::pages::time(u.created as f64)) }
                }
            }
        }
    }
}

/// What the users page's forms post.
#[derive(Debug, Deserialize)]
pub struct UserChange {
    name: String,
    /// `role`, `disable`, `enable` or `unlock`.
    action: String,
    #[serde(default)]
    role: Option<String>,
}

/// `POST /spalloc/system/admin/users`: one change to one user.
pub async fn change(
    State(state): State<HttpState>,
    AdminForm(viewer, form): AdminForm<UserChange>,
) -> Response {
    let name = form.name.clone();
    let outcome: Result<String, String> = match form.action.as_str() {
        "role" => match form.role.as_deref().unwrap_or("").parse::<Role>() {
            Err(e) => Err(e.to_string()),
            Ok(_) if name == viewer.user => Err("you cannot change your own role here".into()),
            Ok(role) => off_runtime(&state.accounts, {
                let name = name.clone();
                move |a| a.set_role(&name, role)
            })
            .await
            .map(|()| format!("{name} is now {role}."))
            .map_err(|e| e.to_string()),
        },
        "disable" | "enable" => {
            let disable = form.action == "disable";
            if disable && name == viewer.user {
                Err("you cannot disable your own account".into())
            } else {
                off_runtime(&state.accounts, {
                    let name = name.clone();
                    move |a| a.set_disabled(&name, disable)
                })
                .await
                .map(|()| format!("{name} is {}.", form.action.clone() + "d"))
                .map_err(|e| e.to_string())
            }
        }
        "unlock" => off_runtime(&state.accounts, {
            let name = name.clone();
            move |a| a.unlock(&name)
        })
        .await
        .map(|()| format!("{name} is unlocked."))
        .map_err(|e| e.to_string()),
        other => Err(format!("unknown action {other:?}")),
    };
    let (status, message) = match outcome {
        Ok(done) => {
            tracing::info!(admin = %viewer.user, user = %name, action = %form.action, "user changed from the dashboard");
            (StatusCode::OK, done)
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("Nothing changed: {e}.")),
    };
    users_page(&state, &viewer, status, Some(message)).await
}

fn create_page(viewer: &Principal, error: Option<&str>) -> Markup {
    html! {
        h1 { "Add a user" }
        @if let Some(e) = error { p id="result" { (e) } }
        form id="new-user" method="post" action=(CREATE_USER_PAGE) {
            (csrf_input(viewer))
            p { label { "Name " input type="text" name="name" required autocomplete="off"; } }
            p { label { "Password " input type="password" name="password" autocomplete="new-password"; }
                " (leave empty for an account that uses API tokens only)" }
            p { label { "Role " (role_select(Role::User)) } }
            p { button type="submit" id="add-user" { "Add" } }
        }
    }
}

/// `GET /spalloc/system/admin/create-user`.
pub async fn create_form(Admin(viewer): Admin) -> Response {
    layout::page("add a user", &viewer, create_page(&viewer, None))
}

/// What the add-a-user form posts.
#[derive(Debug, Deserialize)]
pub struct NewUserForm {
    name: String,
    #[serde(default)]
    password: String,
    role: String,
}

/// `POST /spalloc/system/admin/create-user`: adds the user and sends the
/// browser to the users page, or shows the form again with the error.
pub async fn create(
    State(state): State<HttpState>,
    AdminForm(viewer, form): AdminForm<NewUserForm>,
) -> Response {
    let role = match form.role.parse::<Role>() {
        Ok(role) => role,
        Err(e) => {
            let page = create_page(&viewer, Some(&e.to_string()));
            return (
                StatusCode::BAD_REQUEST,
                layout::page("add a user", &viewer, page),
            )
                .into_response();
        }
    };
    let user = NewUser {
        name: form.name.trim().to_owned(),
        role,
        password: (!form.password.is_empty()).then(|| form.password.clone()),
        groups: Vec::new(),
    };
    let name = user.name.clone();
    match off_runtime(&state.accounts, move |a| a.add_user(&user, now())).await {
        Ok(()) => {
            tracing::info!(admin = %viewer.user, user = %name, %role, "user added from the dashboard");
            (StatusCode::SEE_OTHER, [(header::LOCATION, USERS_PAGE)]).into_response()
        }
        Err(e) => {
            let status = match e {
                AccountsError::UserExists(_) => StatusCode::CONFLICT,
                AccountsError::BadName(_) | AccountsError::Password(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            let page = create_page(&viewer, Some(&format!("Not added: {e}.")));
            (status, layout::page("add a user", &viewer, page)).into_response()
        }
    }
}
