//! Tests of the accounts against a real SQLite database: in memory, and in
//! a file reopened to stand for a server restart.

use super::*;
use std::path::PathBuf;

const T0: UnixSeconds = 1_800_000_000;

fn user(name: &str, role: Role, password: &str) -> NewUser {
    NewUser {
        name: name.into(),
        role,
        password: Some(password.into()),
        groups: vec![],
    }
}

fn accounts_with(names: &[(&str, Role)]) -> Accounts {
    let a = Accounts::in_memory().expect("opens");
    for (name, role) in names {
        a.add_user(&user(name, *role, "pw"), T0).expect("adds");
    }
    a
}

/// A fresh state file path, removed first.
fn state_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spalloc-accounts-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join("state.sqlite")
}

#[test]
fn a_user_logs_in_with_their_password_and_not_another() {
    let a = Accounts::in_memory().expect("opens");
    a.add_user(
        &NewUser {
            groups: vec!["wheel".into(), "crew".into()],
            ..user("alice", Role::User, "secret")
        },
        T0,
    )
    .expect("adds");
    let identity = a.check_password("alice", "secret", T0).expect("logs in");
    assert_eq!(identity.user, "alice");
    assert_eq!(identity.role, Role::User);
    assert_eq!(
        identity.groups,
        vec!["crew".to_string(), "wheel".to_string()]
    );
    assert!(matches!(
        a.check_password("alice", "Secret", T0),
        Err(LoginError::Refused(Refusal::WrongPassword))
    ));
    assert!(matches!(
        a.check_password("bob", "secret", T0),
        Err(LoginError::Refused(Refusal::UnknownUser))
    ));
}

#[test]
fn the_password_is_stored_only_as_an_argon2_hash() {
    let a = accounts_with(&[]);
    a.add_user(&user("alice", Role::User, "hunter2"), T0)
        .expect("adds");
    let stored: String = a
        .db()
        .query_row(
            "SELECT password_hash FROM account_users WHERE name = 'alice'",
            [],
            |r| r.get(0),
        )
        .expect("row");
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.contains("hunter2"));
}

#[test]
fn adding_a_user_twice_or_with_a_bad_name_fails() {
    let a = accounts_with(&[("alice", Role::User)]);
    assert!(matches!(
        a.add_user(&user("alice", Role::Admin, "x"), T0),
        Err(AccountsError::UserExists(_))
    ));
    assert!(matches!(
        a.add_user(&user("a:b", Role::User, "x"), T0),
        Err(AccountsError::BadName(_))
    ));
}

#[test]
fn three_wrong_passwords_lock_the_account_even_against_the_right_one() {
    let a = accounts_with(&[("alice", Role::User)]);
    for i in 0..3 {
        assert!(a.check_password("alice", "wrong", T0 + i).is_err());
    }
    let refused = a.check_password("alice", "pw", T0 + 10);
    assert!(
        matches!(refused, Err(LoginError::Refused(Refusal::Locked(until))) if until == T0 + 2 + 86_400),
        "{refused:?}"
    );
    let info = a.user("alice", T0 + 10).expect("reads").expect("exists");
    assert_eq!(info.locked_until, Some(T0 + 2 + 86_400));
    // A day after the last failure the right password works again.
    assert!(a.check_password("alice", "pw", T0 + 2 + 86_400).is_ok());
}

#[test]
fn a_success_clears_the_failure_count() {
    let a = accounts_with(&[("alice", Role::User)]);
    for round in 0..3 {
        let t = T0 + round * 10;
        assert!(a.check_password("alice", "wrong", t).is_err());
        assert!(a.check_password("alice", "wrong", t + 1).is_err());
        assert!(a.check_password("alice", "pw", t + 2).is_ok());
    }
    let info = a.user("alice", T0 + 100).expect("reads").expect("exists");
    assert_eq!((info.failures, info.locked_until), (0, None));
}

#[test]
fn an_administrator_can_unlock_an_account_early() {
    let a = accounts_with(&[("alice", Role::User)]);
    for i in 0..3 {
        let _ = a.check_password("alice", "wrong", T0 + i);
    }
    a.unlock("alice").expect("unlocks");
    assert!(a.check_password("alice", "pw", T0 + 5).is_ok());
}

#[test]
fn a_disabled_user_cannot_log_in_nor_use_sessions_or_tokens_until_enabled() {
    let a = accounts_with(&[("alice", Role::User)]);
    let session = a.start_session("alice", None, T0).expect("session");
    let token = a.create_token("alice", "t", None, T0).expect("token");
    a.set_disabled("alice", true).expect("disables");
    assert!(matches!(
        a.check_password("alice", "pw", T0),
        Err(LoginError::Refused(Refusal::Disabled))
    ));
    assert_eq!(a.session(&session.id, T0 + 1).expect("reads"), None);
    assert_eq!(a.check_token(&token.secret, T0 + 1).expect("reads"), None);
    a.set_disabled("alice", false).expect("enables");
    assert!(a.session(&session.id, T0 + 2).expect("reads").is_some());
    assert!(a
        .check_token(&token.secret, T0 + 2)
        .expect("reads")
        .is_some());
}

#[test]
fn a_session_carries_its_user_and_csrf_token_until_it_idles_out() {
    let a = accounts_with(&[("alice", Role::Admin)]);
    let s = a.start_session("alice", None, T0).expect("session");
    let live = a.session(&s.id, T0 + 100).expect("reads").expect("live");
    assert_eq!(live.identity.user, "alice");
    assert_eq!(live.identity.role, Role::Admin);
    assert_eq!(live.csrf, s.csrf);
    assert_eq!(live.via_token, None);
    // Used at T0 + 100, so it lasts a full idle period from then.
    let idle = a.policy().session_idle_seconds;
    assert!(a
        .session(&s.id, T0 + 100 + idle - 1)
        .expect("reads")
        .is_some());
    let later = T0 + 100 + idle - 1 + idle;
    assert_eq!(a.session(&s.id, later).expect("reads"), None);
    assert_eq!(a.session("not a session", T0).expect("reads"), None);
}

#[test]
fn logging_out_ends_the_session() {
    let a = accounts_with(&[("alice", Role::User)]);
    let s = a.start_session("alice", None, T0).expect("session");
    assert!(a.end_session(&s.id).expect("ends"));
    assert_eq!(a.session(&s.id, T0).expect("reads"), None);
    assert!(!a.end_session(&s.id).expect("ends"));
}

#[test]
fn a_new_password_ends_password_sessions_but_not_token_sessions() {
    let a = accounts_with(&[("alice", Role::User)]);
    let by_password = a.start_session("alice", None, T0).expect("session");
    let token = a.create_token("alice", "t", None, T0).expect("token");
    let by_token = a
        .start_session("alice", Some(token.info.id), T0)
        .expect("session");
    a.set_password("alice", "new").expect("changes");
    assert_eq!(a.session(&by_password.id, T0).expect("reads"), None);
    assert!(a.session(&by_token.id, T0).expect("reads").is_some());
    assert!(a.check_password("alice", "new", T0).is_ok());
    assert!(a.check_password("alice", "pw", T0).is_err());
}

#[test]
fn an_anonymous_session_knows_its_csrf_token_but_is_not_logged_in() {
    let a = accounts_with(&[]);
    let s = a.start_anonymous_session(T0);
    assert_eq!(
        a.anonymous_csrf(&s.id, T0).as_deref(),
        Some(s.csrf.as_str())
    );
    assert_eq!(a.session(&s.id, T0).expect("reads"), None);
    assert!(a.end_session(&s.id).expect("ends"));
    assert_eq!(a.anonymous_csrf(&s.id, T0), None);
}

#[test]
fn a_token_identifies_its_user_until_revoked_and_is_stored_only_as_a_digest() {
    let a = accounts_with(&[("alice", Role::User), ("bob", Role::User)]);
    let token = a.create_token("alice", "laptop", None, T0).expect("token");
    let (identity, id) = a
        .check_token(&token.secret, T0)
        .expect("reads")
        .expect("valid");
    assert_eq!((identity.user.as_str(), id), ("alice", token.info.id));
    let stored: String = a
        .db()
        .query_row("SELECT secret_digest FROM account_tokens", [], |r| r.get(0))
        .expect("row");
    assert_eq!(stored, secret::digest(&token.secret));
    assert!(!stored.contains(&token.secret));

    assert!(!a.revoke_token("bob", id).expect("runs"), "not bob's");
    assert!(a.revoke_token("alice", id).expect("runs"));
    assert_eq!(a.check_token(&token.secret, T0).expect("reads"), None);
}

#[test]
fn revoking_a_token_ends_the_sessions_it_opened() {
    let a = accounts_with(&[("alice", Role::User)]);
    let token = a.create_token("alice", "t", None, T0).expect("token");
    let s = a
        .start_session("alice", Some(token.info.id), T0)
        .expect("session");
    assert_eq!(
        a.session(&s.id, T0)
            .expect("reads")
            .and_then(|s| s.via_token),
        Some(token.info.id)
    );
    a.revoke_token("alice", token.info.id).expect("revokes");
    assert_eq!(a.session(&s.id, T0).expect("reads"), None);
}

#[test]
fn an_expired_token_and_its_sessions_stop_working() {
    let a = accounts_with(&[("alice", Role::User)]);
    let token = a
        .create_token("alice", "t", Some(T0 + 3600), T0)
        .expect("token");
    let s = a
        .start_session("alice", Some(token.info.id), T0)
        .expect("session");
    assert!(a
        .check_token(&token.secret, T0 + 3599)
        .expect("reads")
        .is_some());
    assert_eq!(
        a.check_token(&token.secret, T0 + 3600).expect("reads"),
        None
    );
    assert_eq!(a.session(&s.id, T0 + 3600).expect("reads"), None);
}

#[test]
fn tokens_are_listed_by_owner_with_when_they_were_last_used() {
    let a = accounts_with(&[("alice", Role::User), ("bob", Role::User)]);
    let t1 = a.create_token("alice", "one", None, T0).expect("token");
    a.create_token("alice", "two\n", Some(T0 + 99), T0 + 1)
        .expect("token");
    a.create_token("bob", "bobs", None, T0).expect("token");
    a.check_token(&t1.secret, T0 + 50).expect("reads");
    let listed = a.tokens("alice").expect("lists");
    let names: Vec<&str> = listed.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["one", "two"], "control characters dropped");
    assert_eq!(listed[0].last_used, Some(T0 + 50));
    assert_eq!(listed[1].last_used, None);
    assert_eq!(listed[1].expires, Some(T0 + 99));
}

#[test]
fn deleting_a_user_deletes_their_sessions_and_tokens() {
    let a = accounts_with(&[("alice", Role::User)]);
    let s = a.start_session("alice", None, T0).expect("session");
    let t = a.create_token("alice", "t", None, T0).expect("token");
    a.delete_user("alice").expect("deletes");
    assert_eq!(a.session(&s.id, T0).expect("reads"), None);
    assert_eq!(a.check_token(&t.secret, T0).expect("reads"), None);
    assert_eq!(a.session_count().expect("counts"), 0);
    assert!(matches!(
        a.delete_user("alice"),
        Err(AccountsError::NoSuchUser(_))
    ));
}

#[test]
fn roles_and_groups_can_be_changed_and_are_seen_by_live_sessions() {
    let a = accounts_with(&[("alice", Role::Reader)]);
    let s = a.start_session("alice", None, T0).expect("session");
    a.set_role("alice", Role::Admin).expect("sets");
    a.set_groups("alice", &["g2".into(), "g1".into()], T0)
        .expect("sets");
    let live = a.session(&s.id, T0).expect("reads").expect("live");
    assert_eq!(live.identity.role, Role::Admin);
    assert_eq!(live.identity.groups, ["g1", "g2"]);
}

#[test]
fn users_sessions_and_tokens_survive_reopening_the_state_file() {
    let path = state_file("restart");
    let (session, token) = {
        let a = Accounts::open(&path).expect("opens");
        a.add_user(&user("alice", Role::User, "pw"), T0)
            .expect("adds");
        for i in 0..2 {
            let _ = a.check_password("alice", "wrong", T0 + i);
        }
        let token = a.create_token("alice", "t", None, T0).expect("token");
        (a.start_session("alice", None, T0).expect("session"), token)
    };
    let a = Accounts::open(&path).expect("reopens");
    let live = a
        .session(&session.id, T0 + 60)
        .expect("reads")
        .expect("live");
    assert_eq!(live.csrf, session.csrf, "the CSRF token is kept");
    assert!(a
        .check_token(&token.secret, T0 + 60)
        .expect("reads")
        .is_some());
    // The two failures are remembered: one more locks the account.
    let _ = a.check_password("alice", "wrong", T0 + 61);
    assert!(matches!(
        a.check_password("alice", "pw", T0 + 62),
        Err(LoginError::Refused(Refusal::Locked(_)))
    ));
}

#[test]
fn the_accounts_share_the_state_file_with_the_job_store() {
    let path = state_file("shared");
    let (store, _) =
        crate::store::Store::open(&path, crate::store::Synchronous::Normal).expect("store opens");
    let a = Accounts::open(&path).expect("accounts open");
    a.add_user(&user("alice", Role::User, "pw"), T0)
        .expect("adds");
    assert!(
        store.read().expect("loads").0.is_none(),
        "no jobs saved yet"
    );
    drop(store);
    let a2 = Accounts::open(&path).expect("reopens");
    assert_eq!(a2.users(T0).expect("lists").len(), 1);
}

#[test]
fn the_demo_user_is_made_only_for_empty_in_memory_accounts() {
    let a = Accounts::in_memory().expect("opens");
    let login = demo::create_demo_user(&a, T0).expect("runs").expect("made");
    assert!(a.check_password("demo", &login.password, T0).is_ok());
    assert!(a.check_token(&login.token, T0).expect("reads").is_some());
    assert_eq!(demo::create_demo_user(&a, T0).expect("runs"), None);

    let file = Accounts::open(&state_file("demo")).expect("opens");
    assert_eq!(demo::create_demo_user(&file, T0).expect("runs"), None);
}

#[test]
fn names_with_separators_or_spaces_are_refused() {
    for bad in ["", "a b", "a:b", "a/b", "x\n", &"n".repeat(65)] {
        assert!(check_name(bad).is_err(), "{bad:?}");
    }
    for good in ["alice", "bob.smith", "a-b_c", "openid.x@y+z", "Ünï"] {
        assert!(check_name(good).is_ok(), "{good:?}");
    }
}

#[test]
fn a_remembered_password_stops_working_when_changed_locked_or_disabled() {
    let a = accounts_with(&[("alice", Role::User)]);
    assert!(a.check_password("alice", "pw", T0).is_ok());
    assert!(a.check_password("alice", "pw", T0).is_ok(), "remembered");
    a.set_disabled("alice", true).expect("disables");
    assert!(a.check_password("alice", "pw", T0).is_err());
    a.set_disabled("alice", false).expect("enables");
    for i in 0..3 {
        let _ = a.check_password("alice", "wrong", T0 + i);
    }
    assert!(a.check_password("alice", "pw", T0 + 5).is_err(), "locked");
    a.unlock("alice").expect("unlocks");
    a.set_password("alice", "new").expect("changes");
    assert!(a.check_password("alice", "pw", T0 + 6).is_err());
    assert!(a.check_password("alice", "new", T0 + 6).is_ok());
}

#[test]
fn only_a_remembered_password_or_a_lock_is_decided_without_hashing() {
    let a = accounts_with(&[("alice", Role::User)]);
    assert!(
        a.check_password_quickly("alice", "pw", T0).is_none(),
        "never checked"
    );
    assert!(a.check_password("alice", "pw", T0).is_ok());
    let quick = a
        .check_password_quickly("alice", "pw", T0)
        .expect("decided");
    assert_eq!(quick.expect("accepted").user, "alice");
    assert!(a.check_password_quickly("alice", "wrong", T0).is_none());
    assert!(a.check_password_quickly("nobody", "pw", T0).is_none());
    for i in 0..3 {
        let _ = a.check_password("alice", "wrong", T0 + i);
    }
    assert!(matches!(
        a.check_password_quickly("alice", "pw", T0 + 5),
        Some(Err(LoginError::Refused(Refusal::Locked(_))))
    ));
}

/// What releases before the "account tables" migration made of a state
/// file: the store's first migration (version 1) plus the account tables,
/// created by the accounts module outside the migration list.
const ACCOUNTS_BEFORE_MIGRATION: &str = "
    CREATE TABLE IF NOT EXISTS account_users (
        name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT,
        disabled INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,
        last_failure INTEGER, created INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS account_groups (
        name TEXT PRIMARY KEY, created INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS account_memberships (
        user TEXT NOT NULL REFERENCES account_users(name) ON DELETE CASCADE,
        grp TEXT NOT NULL REFERENCES account_groups(name) ON DELETE CASCADE,
        PRIMARY KEY (user, grp));
    CREATE TABLE IF NOT EXISTS account_tokens (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user TEXT NOT NULL REFERENCES account_users(name) ON DELETE CASCADE,
        name TEXT NOT NULL, secret_digest TEXT NOT NULL UNIQUE,
        created INTEGER NOT NULL, last_used INTEGER, expires INTEGER);
    CREATE TABLE IF NOT EXISTS account_sessions (
        id_digest TEXT PRIMARY KEY,
        user TEXT NOT NULL REFERENCES account_users(name) ON DELETE CASCADE,
        csrf TEXT NOT NULL, created INTEGER NOT NULL, last_used INTEGER NOT NULL,
        via_token INTEGER REFERENCES account_tokens(id) ON DELETE CASCADE);
    CREATE INDEX IF NOT EXISTS account_sessions_by_last_use
        ON account_sessions(last_used);";

#[test]
fn a_state_file_whose_account_tables_predate_their_migration_opens_and_keeps_its_users() {
    let path = state_file("premigration");
    {
        let conn = Connection::open(&path).expect("creates");
        conn.execute_batch(crate::store::schema::MIGRATIONS[0])
            .expect("first migration");
        conn.pragma_update(None, "user_version", 1)
            .expect("version");
        conn.execute_batch(ACCOUNTS_BEFORE_MIGRATION)
            .expect("old account tables");
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('next_job_id', 7)",
            [],
        )
        .expect("job counter");
        conn.execute(
            "INSERT INTO account_users (name, role, password_hash, created)
             VALUES ('alice', ?1, ?2, ?3)",
            rusqlite::params![
                Role::Admin.as_str(),
                password::hash("pw").expect("hashes"),
                T0
            ],
        )
        .expect("a user");
    }
    // The server opens it (the store migrates it), then the accounts.
    let (store, opened) =
        crate::store::Store::open(&path, crate::store::Synchronous::Normal).expect("store opens");
    assert!(opened.damage.is_empty(), "{:?}", opened.damage);
    assert_eq!(
        opened.records.expect("records").next_job_id,
        7,
        "the jobs' records are kept"
    );
    let a = Accounts::open(&path).expect("accounts open");
    let users = a.users(T0).expect("lists");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].identity.user, "alice");
    assert_eq!(users[0].identity.role, Role::Admin);
    assert!(a.check_password("alice", "pw", T0).is_ok());
    drop(store);
    let conn = Connection::open(&path).expect("reopens");
    assert_eq!(
        crate::store::schema::version(&conn).expect("version"),
        crate::store::schema::current()
    );
}

#[test]
fn a_remembered_token_sees_a_disable_or_role_change_made_in_this_process_at_once() {
    let a = accounts_with(&[("alice", Role::User)]);
    let token = a.create_token("alice", "laptop", None, T0).expect("token");
    assert!(a.check_token(&token.secret, T0).expect("reads").is_some());
    a.set_role("alice", Role::Admin).expect("role");
    let (identity, _) = a
        .check_token(&token.secret, T0)
        .expect("reads")
        .expect("valid");
    assert_eq!(identity.role, Role::Admin);
    a.set_disabled("alice", true).expect("disables");
    assert_eq!(a.check_token(&token.secret, T0).expect("reads"), None);
}

#[test]
fn a_remembered_token_sees_changes_made_by_another_process_at_once() {
    let path = state_file("token-cache-other-process");
    let server = Accounts::open(&path).expect("opens");
    server
        .add_user(&user("alice", Role::User, "pw"), T0)
        .expect("adds");
    let token = server
        .create_token("alice", "laptop", None, T0)
        .expect("token");
    assert!(server
        .check_token(&token.secret, T0)
        .expect("reads")
        .is_some());
    // `spalloc-server user …` in another process: another connection.
    let cli = Accounts::open(&path).expect("opens again");
    cli.set_role("alice", Role::Admin).expect("role");
    let (identity, _) = server
        .check_token(&token.secret, T0)
        .expect("reads")
        .expect("valid");
    assert_eq!(identity.role, Role::Admin);
    cli.set_disabled("alice", true).expect("disables");
    assert_eq!(server.check_token(&token.secret, T0).expect("reads"), None);
    cli.set_disabled("alice", false).expect("enables");
    assert!(server
        .check_token(&token.secret, T0)
        .expect("reads")
        .is_some());
    assert!(cli.revoke_token("alice", token.info.id).expect("revokes"));
    assert_eq!(server.check_token(&token.secret, T0).expect("reads"), None);
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}
