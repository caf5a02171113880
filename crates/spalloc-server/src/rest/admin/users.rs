//! `/admin/users` and `/admin/users/{name}`: allocserv's `UserRecord`
//! over the accounts database.
//!
//! A record as written: `user-name`, `has-password`, `enabled`, `locked`,
//! `trust-level` (`READER`, `USER` or `ADMIN`), `last-failed-login` (only
//! when there is one), `groups` (group name → group URL), `open-id-subject`
//! (always `null`: there are no OpenID accounts) and `internal` (always
//! `true`). The password never comes back. On input every field is
//! optional and the read-only ones are ignored, so a record read with `GET`
//! can be changed and sent back with `PUT`.

use super::super::{ApiRequest, Failure, Outcome, Reply};
use super::{account_failure, admin_url, json_body, path_segment};
use crate::accounts::{Accounts, NewUser, Role, UnixSeconds, UserInfo};
use crate::rest::time_format::instant;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// allocserv's `UserRecord` as a client sends it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct UserRecord {
    user_name: Option<String>,
    password: Option<String>,
    enabled: Option<bool>,
    locked: Option<bool>,
    trust_level: Option<String>,
    open_id_subject: Option<String>,
    // Read-only: accepted and ignored.
    #[serde(rename = "user-id")]
    _user_id: Option<Value>,
    #[serde(rename = "has-password")]
    _has_password: Option<Value>,
    #[serde(rename = "last-successful-login")]
    _last_successful_login: Option<Value>,
    #[serde(rename = "last-failed-login")]
    _last_failed_login: Option<Value>,
    #[serde(rename = "internal")]
    _internal: Option<Value>,
    #[serde(rename = "groups")]
    _groups: Option<Value>,
}

impl UserRecord {
    /// The password to set: a blank one means none, as in allocserv.
    fn password(&self) -> Option<&str> {
        self.password.as_deref().filter(|p| !p.trim().is_empty())
    }

    /// The trust level asked for, if any.
    fn role(&self) -> Result<Option<Role>, Failure> {
        self.trust_level.as_deref().map(trust_level).transpose()
    }

    /// Refuses what this server cannot do.
    fn check_supported(&self) -> Result<(), Failure> {
        if self.open_id_subject.is_some() {
            return Err(Failure::bad(
                "OpenID accounts are not supported by this server; give a password or none \
                 (then the user logs in with API tokens)",
            ));
        }
        Ok(())
    }
}

/// allocserv's trust level names.
fn trust_level(text: &str) -> Result<Role, Failure> {
    match text.to_ascii_uppercase().as_str() {
        "READER" => Ok(Role::Reader),
        "USER" => Ok(Role::User),
        "ADMIN" => Ok(Role::Admin),
        _ => Err(Failure::bad(format!(
            "trust-level {text:?} is not offered by this server: use READER, USER or ADMIN"
        ))),
    }
}

fn trust_level_name(role: Role) -> &'static str {
    match role {
        Role::Reader => "READER",
        Role::User => "USER",
        Role::Admin => "ADMIN",
    }
}

/// A user's URL.
pub fn user_url(base: &str, name: &str) -> String {
    format!("{}/users/{}", admin_url(base), path_segment(name))
}

/// A user as allocserv writes a sanitised `UserRecord`.
fn record(base: &str, u: &UserInfo) -> Value {
    let groups: Map<String, Value> = u
        .identity
        .groups
        .iter()
        .map(|g| (g.clone(), json!(super::groups::group_url(base, g))))
        .collect();
    let mut v = json!({
        "user-name": u.identity.user,
        "has-password": u.has_password,
        "enabled": !u.disabled,
        "locked": u.locked_until.is_some(),
        "trust-level": trust_level_name(u.identity.role),
    });
    if let (Some(t), Some(o)) = (
        u.last_failure.and_then(|t| instant(t as f64)),
        v.as_object_mut(),
    ) {
        o.insert("last-failed-login".into(), json!(t));
    }
    if let Some(o) = v.as_object_mut() {
        o.insert("groups".into(), Value::Object(groups));
        o.insert("open-id-subject".into(), Value::Null);
        o.insert("internal".into(), json!(true));
    }
    v
}

fn no_such_user() -> Failure {
    Failure::not_found("no such user")
}

fn user_or_404(accounts: &Accounts, name: &str, now: i64) -> Result<UserInfo, Failure> {
    accounts
        .user(name, now as UnixSeconds)
        .map_err(account_failure)?
        .ok_or_else(no_such_user)
}

/// `GET /admin/users`: user name → URL, sorted by name.
pub fn list(accounts: &Accounts, request: &ApiRequest, now: i64) -> Outcome {
    let users = accounts
        .users(now as UnixSeconds)
        .map_err(account_failure)?;
    let map: Map<String, Value> = users
        .iter()
        .map(|u| {
            (
                u.identity.user.clone(),
                json!(user_url(request.base, &u.identity.user)),
            )
        })
        .collect();
    Ok(Reply::json(Value::Object(map)))
}

/// `POST /admin/users`: 201 with `Location` and the record. The trust
/// level defaults to USER and `enabled` to true; `groups` is ignored (as
/// by allocserv: use the groups' `members`).
pub fn create(accounts: &Accounts, request: &ApiRequest, now: i64) -> Outcome {
    let wanted: UserRecord = json_body(request.body)?;
    wanted.check_supported()?;
    let name = wanted
        .user_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Failure::bad("user-name must not be blank"))?
        .to_owned();
    let role = wanted.role()?.unwrap_or(Role::User);
    let now = now as UnixSeconds;
    accounts
        .add_user(
            &NewUser {
                name: name.clone(),
                role,
                password: wanted.password().map(str::to_owned),
                groups: Vec::new(),
            },
            now,
        )
        .map_err(|e| match e {
            crate::accounts::AccountsError::UserExists(_) => Failure {
                status: 409,
                message: "user already exists".into(),
            },
            e => account_failure(e),
        })?;
    if wanted.enabled == Some(false) {
        accounts
            .set_disabled(&name, true)
            .map_err(account_failure)?;
    }
    let user = user_or_404(accounts, &name, now)?;
    let url = user_url(request.base, &name);
    let mut reply = Reply::json(record(request.base, &user));
    reply.status = 201;
    reply.location = Some(url);
    Ok(reply)
}

/// `GET /admin/users/{name}`.
pub fn describe(accounts: &Accounts, request: &ApiRequest, name: &str, now: i64) -> Outcome {
    let user = user_or_404(accounts, name, now)?;
    Ok(Reply::json(record(request.base, &user)))
}

/// `PUT /admin/users/{name}`: changes what the record gives (absent and
/// read-only fields are left alone) and answers the record after. A new
/// password ends the user's password sessions; `locked` can only be
/// cleared; an administrator cannot change their own trust level, enabled
/// or locked state (which would lock them out).
pub fn update(accounts: &Accounts, request: &ApiRequest, name: &str, now: i64) -> Outcome {
    let wanted: UserRecord = json_body(request.body)?;
    wanted.check_supported()?;
    let old = user_or_404(accounts, name, now)?;
    if let Some(new_name) = wanted.user_name.as_deref().map(str::trim) {
        if new_name != name {
            return Err(Failure::bad(
                "users cannot be renamed on this server (jobs record their owner by name); \
                 make a new user instead",
            ));
        }
    }
    let role = wanted.role()?.filter(|r| *r != old.identity.role);
    let disable = wanted.enabled.map(|e| !e).filter(|d| *d != old.disabled);
    let locked = old.locked_until.is_some();
    let unlock = match wanted.locked {
        Some(true) if !locked => {
            return Err(Failure::bad(
                "an account cannot be locked here, only unlocked (locked: false); \
                 disable it instead (enabled: false)",
            ))
        }
        Some(false) => locked,
        _ => false,
    };
    let own = name == request.user.name;
    if own && (role.is_some() || disable.is_some() || unlock) {
        return Err(Failure::bad(
            "administrators cannot change their own trust level, enabled or locked state",
        ));
    }
    if let Some(password) = wanted.password() {
        accounts
            .set_password(name, password)
            .map_err(account_failure)?;
    }
    if let Some(role) = role {
        accounts.set_role(name, role).map_err(account_failure)?;
    }
    if let Some(disabled) = disable {
        accounts
            .set_disabled(name, disabled)
            .map_err(account_failure)?;
    }
    if unlock {
        accounts.unlock(name).map_err(account_failure)?;
    }
    describe(accounts, request, name, now)
}

/// `DELETE /admin/users/{name}`: `deleted user NAME`; the user's sessions,
/// tokens and memberships go too (their jobs live on).
pub fn delete(accounts: &Accounts, request: &ApiRequest, name: &str) -> Outcome {
    if name == request.user.name {
        return Err(Failure::bad(
            "administrators cannot delete their own account",
        ));
    }
    accounts.delete_user(name).map_err(|e| match e {
        crate::accounts::AccountsError::NoSuchUser(_) => no_such_user(),
        e => account_failure(e),
    })?;
    Ok(Reply::text(200, format!("deleted user {name}")))
}
