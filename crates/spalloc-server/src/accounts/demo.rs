//! The account that lets anyone try the server when there is no user
//! database to speak of: with the built-in demo or `--no-state` the
//! accounts live in memory and start empty, so a `demo` user (role `user`)
//! is made with a fresh random password and API token, which the server
//! logs at start-up.

use super::policy::UnixSeconds;
use super::{secret, Accounts, AccountsError, NewUser, Role};

/// The demo user's name.
pub const DEMO_USER: &str = "demo";

/// The demo user's credentials, to be logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoLogin {
    /// The user name ([`DEMO_USER`]).
    pub user: String,
    /// A fresh random password.
    pub password: String,
    /// A fresh personal API token.
    pub token: String,
}

/// Makes the demo user if the accounts are in memory and have no users;
/// otherwise (a real user database) does nothing.
pub fn create_demo_user(
    accounts: &Accounts,
    now: UnixSeconds,
) -> Result<Option<DemoLogin>, AccountsError> {
    if !accounts.is_in_memory() || !accounts.users(now)?.is_empty() {
        return Ok(None);
    }
    let password = secret::random_hex(8);
    accounts.add_user(
        &NewUser {
            name: DEMO_USER.into(),
            role: Role::User,
            password: Some(password.clone()),
            groups: vec![DEMO_USER.into()],
        },
        now,
    )?;
    let token = accounts.create_token(DEMO_USER, "demo", None, now)?;
    Ok(Some(DemoLogin {
        user: DEMO_USER.into(),
        password,
        token: token.secret,
    }))
}

/// Logs the demo credentials (at info level, so `--quiet` hides them).
pub fn log_demo_login(login: &DemoLogin) {
    tracing::info!(
        "accounts are in memory: log in as user {:?} with password {:?}, or send \
         \"Authorization: Bearer {}\"",
        login.user,
        login.password,
        login.token
    );
}
