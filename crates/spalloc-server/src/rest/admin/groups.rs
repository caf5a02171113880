//! `/admin/groups`, `/admin/groups/{name}` and their `members`:
//! allocserv's `GroupRecord` and `MemberRecord` over the accounts database.
//!
//! A group as written: `group-name`, `quota` (always `null`: this server
//! has no quotas), `type` (always `INTERNAL`) and `members` (user name →
//! membership URL). A membership: `group-name`, `group-url`, `user-name`,
//! `user-url`.

use super::super::{ApiRequest, Failure, Outcome, Reply};
use super::users::user_url;
use super::{account_failure, admin_url, json_body, path_segment};
use crate::accounts::{Accounts, AccountsError, GroupInfo, UnixSeconds};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// allocserv's `GroupRecord` as a client sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct GroupRecord {
    group_name: Option<String>,
    quota: Option<Value>,
    #[serde(rename = "type")]
    kind: Option<String>,
    // Read-only: accepted and ignored.
    #[serde(rename = "group-id")]
    _group_id: Option<Value>,
    #[serde(rename = "members")]
    _members: Option<Value>,
}

impl GroupRecord {
    /// Refuses what this server cannot do.
    fn check_supported(&self) -> Result<(), Failure> {
        if self.quota.as_ref().is_some_and(|q| !q.is_null()) {
            return Err(Failure::bad(
                "quotas are not supported by this server; leave quota out or null",
            ));
        }
        match self.kind.as_deref() {
            None => Ok(()),
            Some(k) if k.eq_ignore_ascii_case("INTERNAL") => Ok(()),
            Some(k) => Err(Failure::bad(format!(
                "group type {k:?} is not supported by this server: only INTERNAL groups exist"
            ))),
        }
    }

    fn name(&self) -> Option<&str> {
        self.group_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
    }
}

/// allocserv's `MemberRecord` as a client sends it: only `user-name` counts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct MemberRecord {
    user_name: Option<String>,
    #[serde(rename = "id")]
    _id: Option<Value>,
    #[serde(rename = "group-id")]
    _group_id: Option<Value>,
    #[serde(rename = "group-name")]
    _group_name: Option<Value>,
    #[serde(rename = "group-url")]
    _group_url: Option<Value>,
    #[serde(rename = "user-id")]
    _user_id: Option<Value>,
    #[serde(rename = "user-url")]
    _user_url: Option<Value>,
}

/// A group's URL.
pub fn group_url(base: &str, name: &str) -> String {
    format!("{}/groups/{}", admin_url(base), path_segment(name))
}

/// A membership's URL.
fn member_url(base: &str, group: &str, user: &str) -> String {
    format!("{}/members/{}", group_url(base, group), path_segment(user))
}

fn record(base: &str, g: &GroupInfo) -> Value {
    let members: Map<String, Value> = g
        .members
        .iter()
        .map(|m| (m.clone(), json!(member_url(base, &g.name, m))))
        .collect();
    json!({
        "group-name": g.name,
        "quota": null,
        "type": "INTERNAL",
        "members": members,
    })
}

fn member_record(base: &str, group: &str, user: &str) -> Value {
    json!({
        "group-name": group,
        "group-url": group_url(base, group),
        "user-name": user,
        "user-url": user_url(base, user),
    })
}

fn no_such_group() -> Failure {
    Failure::not_found("no such group")
}

fn no_such_membership() -> Failure {
    Failure::not_found("no such membership")
}

/// allocserv's messages for unknown names.
fn not_found_as_allocserv(e: AccountsError) -> Failure {
    match e {
        AccountsError::NoSuchGroup(_) => no_such_group(),
        AccountsError::NoSuchUser(_) => Failure::not_found("no such user"),
        e => account_failure(e),
    }
}

fn group_or_404(accounts: &Accounts, name: &str) -> Result<GroupInfo, Failure> {
    accounts
        .group(name)
        .map_err(account_failure)?
        .ok_or_else(no_such_group)
}

/// `GET /admin/groups`: group name → URL, sorted by name.
pub fn list(accounts: &Accounts, request: &ApiRequest) -> Outcome {
    let groups = accounts.groups().map_err(account_failure)?;
    let map: Map<String, Value> = groups
        .iter()
        .map(|g| (g.name.clone(), json!(group_url(request.base, &g.name))))
        .collect();
    Ok(Reply::json(Value::Object(map)))
}

/// `POST /admin/groups`: 201 with `Location` and the (empty) group.
pub fn create(accounts: &Accounts, request: &ApiRequest, now: i64) -> Outcome {
    let wanted: GroupRecord = json_body(request.body)?;
    wanted.check_supported()?;
    let name = wanted
        .name()
        .ok_or_else(|| Failure::bad("group-name must not be blank"))?;
    accounts
        .add_group(name, now as UnixSeconds)
        .map_err(|e| match e {
            AccountsError::GroupExists(_) => Failure::bad("group already exists"),
            e => account_failure(e),
        })?;
    let group = group_or_404(accounts, name)?;
    let mut reply = Reply::json(record(request.base, &group));
    reply.status = 201;
    reply.location = Some(group_url(request.base, name));
    Ok(reply)
}

/// `GET /admin/groups/{name}`.
pub fn describe(accounts: &Accounts, request: &ApiRequest, name: &str) -> Outcome {
    let group = group_or_404(accounts, name)?;
    Ok(Reply::json(record(request.base, &group)))
}

/// `PUT /admin/groups/{name}`: renames the group if `group-name` differs
/// (members are kept), and answers the group after.
pub fn update(accounts: &Accounts, request: &ApiRequest, name: &str) -> Outcome {
    let wanted: GroupRecord = json_body(request.body)?;
    wanted.check_supported()?;
    let new_name = wanted.name().unwrap_or(name);
    accounts
        .rename_group(name, new_name)
        .map_err(not_found_as_allocserv)?;
    describe(accounts, request, new_name)
}

/// `DELETE /admin/groups/{name}`: `deleted group NAME` (its members stay).
pub fn delete(accounts: &Accounts, name: &str) -> Outcome {
    accounts
        .delete_group(name)
        .map_err(not_found_as_allocserv)?;
    Ok(Reply::text(200, format!("deleted group {name}")))
}

/// `POST /admin/groups/{name}/members` `{"user-name": …}`: 201 with
/// `Location` and the membership; 400 if they already are a member.
pub fn add_member(accounts: &Accounts, request: &ApiRequest, group: &str) -> Outcome {
    let wanted: MemberRecord = json_body(request.body)?;
    let user = wanted
        .user_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Failure::bad("user-name must not be blank"))?;
    let added = accounts
        .add_member(group, user)
        .map_err(not_found_as_allocserv)?;
    if !added {
        return Err(Failure::bad("user already a member of group"));
    }
    let mut reply = Reply::json(member_record(request.base, group, user));
    reply.status = 201;
    reply.location = Some(member_url(request.base, group, user));
    Ok(reply)
}

/// `GET /admin/groups/{name}/members/{user}`.
pub fn describe_member(
    accounts: &Accounts,
    request: &ApiRequest,
    group: &str,
    user: &str,
) -> Outcome {
    let g = group_or_404(accounts, group)?;
    if !g.members.iter().any(|m| m == user) {
        return Err(no_such_membership());
    }
    Ok(Reply::json(member_record(request.base, group, user)))
}

/// `DELETE /admin/groups/{name}/members/{user}`: 204.
pub fn remove_member(accounts: &Accounts, group: &str, user: &str) -> Outcome {
    let removed = accounts.remove_member(group, user).map_err(|e| match e {
        AccountsError::NoSuchUser(_) => no_such_membership(),
        e => not_found_as_allocserv(e),
    })?;
    if !removed {
        return Err(no_such_membership());
    }
    Ok(Reply::empty(204))
}
