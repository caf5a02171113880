//! Users and groups: adding, changing and listing them, and checking a
//! password against the lock-out rules.

use super::policy::{Failures, UnixSeconds};
use super::{check_name, password, Accounts, AccountsError, Identity, Role};
use rusqlite::{params, Connection, OptionalExtension};

/// A user to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// The user name.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// Their password; `None` makes an account that logs in with tokens only.
    pub password: Option<String>,
    /// Groups to put them in (made if they do not exist).
    pub groups: Vec<String>,
}

/// A user as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// Name, role and groups.
    pub identity: Identity,
    /// Whether they have a password (else tokens only).
    pub has_password: bool,
    /// Disabled accounts cannot log in or use their sessions or tokens.
    pub disabled: bool,
    /// Until when the account is locked out, if it is.
    pub locked_until: Option<UnixSeconds>,
    /// Consecutive failed log-ins.
    pub failures: u32,
    /// When the last of those failures was (cleared by a success).
    pub last_failure: Option<UnixSeconds>,
    /// When the account was made.
    pub created: UnixSeconds,
}

/// Why a log-in was refused. Callers tell the client only "no" whatever
/// the reason, so as not to reveal which user names exist; the reason is
/// for the server's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// There is no such user.
    #[error("no such user")]
    UnknownUser,
    /// The password is wrong (counted towards lock-out).
    #[error("wrong password")]
    WrongPassword,
    /// Too many failures; correct passwords are refused too until then.
    #[error("account locked until {0}")]
    Locked(UnixSeconds),
    /// An administrator disabled the account.
    #[error("account disabled")]
    Disabled,
    /// The account has no password (tokens only).
    #[error("account has no password")]
    NoPassword,
}

/// A failed password check.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The credentials were refused.
    #[error("log-in refused: {0}")]
    Refused(Refusal),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] AccountsError),
}

/// The row of a user that a password check needs.
struct Credentials {
    hash: Option<String>,
    disabled: bool,
    failures: Failures,
}

impl Accounts {
    /// Adds a user. The password (if any) is hashed before the database is
    /// locked, so this takes tens of milliseconds.
    pub fn add_user(&self, user: &NewUser, now: UnixSeconds) -> Result<(), AccountsError> {
        check_name(&user.name)?;
        for group in &user.groups {
            check_name(group)?;
        }
        let hash = user.password.as_deref().map(password::hash).transpose()?;
        let mut db = self.db();
        let tx = db.transaction()?;
        let added = tx.execute(
            "INSERT OR IGNORE INTO account_users (name, role, password_hash, created)
             VALUES (?1, ?2, ?3, ?4)",
            params![user.name, user.role.as_str(), hash, now],
        )?;
        if added == 0 {
            return Err(AccountsError::UserExists(user.name.clone()));
        }
        for group in &user.groups {
            join_group(&tx, &user.name, group, now)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets a new password, clears any lock-out, and ends the user's
    /// sessions (whoever knew the old password is logged out).
    pub fn set_password(&self, name: &str, new_password: &str) -> Result<(), AccountsError> {
        let hash = password::hash(new_password)?;
        let mut db = self.db();
        let tx = db.transaction()?;
        let changed = tx.execute(
            "UPDATE account_users SET password_hash = ?2, failures = 0, last_failure = NULL
             WHERE name = ?1",
            params![name, hash],
        )?;
        if changed == 0 {
            return Err(AccountsError::NoSuchUser(name.to_owned()));
        }
        tx.execute(
            "DELETE FROM account_sessions WHERE user = ?1 AND via_token IS NULL",
            params![name],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Disables (or re-enables) an account. A disabled user's sessions and
    /// tokens stop working at once, and come back if it is re-enabled.
    pub fn set_disabled(&self, name: &str, disabled: bool) -> Result<(), AccountsError> {
        self.update_user(
            name,
            "UPDATE account_users SET disabled = ?2 WHERE name = ?1",
            disabled,
        )
    }

    /// Changes a user's role.
    pub fn set_role(&self, name: &str, role: Role) -> Result<(), AccountsError> {
        self.update_user(
            name,
            "UPDATE account_users SET role = ?2 WHERE name = ?1",
            role.as_str(),
        )
    }

    /// Clears a lock-out before it runs out.
    pub fn unlock(&self, name: &str) -> Result<(), AccountsError> {
        self.update_user(
            name,
            "UPDATE account_users SET failures = ?2, last_failure = NULL WHERE name = ?1",
            0,
        )
    }

    /// Replaces a user's groups (groups are made if need be).
    pub fn set_groups(
        &self,
        name: &str,
        groups: &[String],
        now: UnixSeconds,
    ) -> Result<(), AccountsError> {
        for group in groups {
            check_name(group)?;
        }
        let mut db = self.db();
        let tx = db.transaction()?;
        if !user_exists(&tx, name)? {
            return Err(AccountsError::NoSuchUser(name.to_owned()));
        }
        tx.execute(
            "DELETE FROM account_memberships WHERE user = ?1",
            params![name],
        )?;
        for group in groups {
            join_group(&tx, name, group, now)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes a user with their sessions, tokens and memberships.
    pub fn delete_user(&self, name: &str) -> Result<(), AccountsError> {
        let deleted = self
            .db()
            .execute("DELETE FROM account_users WHERE name = ?1", params![name])?;
        if deleted == 0 {
            return Err(AccountsError::NoSuchUser(name.to_owned()));
        }
        Ok(())
    }

    /// One user, if they exist.
    pub fn user(&self, name: &str, now: UnixSeconds) -> Result<Option<UserInfo>, AccountsError> {
        let db = self.db();
        let row = db
            .query_row(
                "SELECT name, role, password_hash IS NOT NULL, disabled, failures,
                        last_failure, created
                 FROM account_users WHERE name = ?1",
                params![name],
                user_row,
            )
            .optional()?;
        row.map(|r| self.user_info(&db, r, now)).transpose()
    }

    /// Every user, by name.
    pub fn users(&self, now: UnixSeconds) -> Result<Vec<UserInfo>, AccountsError> {
        let db = self.db();
        let rows = db
            .prepare(
                "SELECT name, role, password_hash IS NOT NULL, disabled, failures,
                        last_failure, created
                 FROM account_users ORDER BY name",
            )?
            .query_map([], user_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|r| self.user_info(&db, r, now))
            .collect()
    }

    /// Checks a user name and password at `now`, applying the lock-out
    /// rules: a failure is counted; a success clears the count. A locked
    /// account is refused without checking the password. Takes tens of
    /// milliseconds (run it off the async runtime), except when
    /// [`Accounts::check_password_quickly`] would have decided.
    pub fn check_password(
        &self,
        name: &str,
        given: &str,
        now: UnixSeconds,
    ) -> Result<Identity, LoginError> {
        let refuse = |why| {
            password::waste_a_verification(given);
            Err(LoginError::Refused(why))
        };
        let Some(creds) = self.credentials(name)? else {
            return refuse(Refusal::UnknownUser);
        };
        if creds.disabled {
            return refuse(Refusal::Disabled);
        }
        if let Some(until) = self.policy().locked_until(creds.failures, now) {
            return Err(LoginError::Refused(Refusal::Locked(until)));
        }
        let Some(hash) = creds.hash else {
            return refuse(Refusal::NoPassword);
        };
        if self.verified().contains(name, given, &hash) {
            return self.password_accepted(name);
        }
        if password::verify(given, &hash) {
            self.verified().insert(name, given, &hash);
            return self.password_accepted(name);
        }
        // Read the count again under the lock, so that failures checked at
        // the same time are all counted.
        let db = self.db();
        let failures = db
            .query_row(
                "SELECT failures, last_failure FROM account_users WHERE name = ?1",
                params![name],
                |r| {
                    Ok(Failures {
                        count: r.get(0)?,
                        last: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(AccountsError::from)?
            .unwrap_or_default();
        let after = self.policy().after_failure(failures, now);
        db.execute(
            "UPDATE account_users SET failures = ?2, last_failure = ?3 WHERE name = ?1",
            params![name, after.count, after.last],
        )
        .map_err(AccountsError::from)?;
        Err(LoginError::Refused(Refusal::WrongPassword))
    }

    /// [`Accounts::check_password`] when it needs no hashing: a password
    /// this process already accepted against the same stored hash
    /// ([`super::verified`]), or a locked account. `None` means "call
    /// `check_password`". HTTP Basic clients, which send their password
    /// with every request, take this path after their first.
    pub fn check_password_quickly(
        &self,
        name: &str,
        given: &str,
        now: UnixSeconds,
    ) -> Option<Result<Identity, LoginError>> {
        let creds = match self.credentials(name) {
            Ok(Some(creds)) => creds,
            Ok(None) => return None,
            Err(e) => return Some(Err(e.into())),
        };
        if creds.disabled {
            return None;
        }
        if let Some(until) = self.policy().locked_until(creds.failures, now) {
            return Some(Err(LoginError::Refused(Refusal::Locked(until))));
        }
        let hash = creds.hash?;
        self.verified()
            .contains(name, given, &hash)
            .then(|| self.password_accepted(name))
    }

    /// The row a password check needs.
    fn credentials(&self, name: &str) -> Result<Option<Credentials>, AccountsError> {
        let row = self
            .db()
            .prepare_cached(
                "SELECT password_hash, disabled, failures, last_failure
                 FROM account_users WHERE name = ?1",
            )?
            .query_row(params![name], |r| {
                Ok(Credentials {
                    hash: r.get(0)?,
                    disabled: r.get(1)?,
                    failures: Failures {
                        count: r.get(2)?,
                        last: r.get(3)?,
                    },
                })
            })
            .optional()?;
        Ok(row)
    }

    /// A right password: clears the failure count, and says who it is.
    fn password_accepted(&self, name: &str) -> Result<Identity, LoginError> {
        self.db()
            .prepare_cached(
                "UPDATE account_users SET failures = 0, last_failure = NULL
                 WHERE name = ?1 AND failures != 0",
            )
            .and_then(|mut s| s.execute(params![name]))
            .map_err(AccountsError::from)?;
        self.identity(name)?
            .map(|(identity, _)| identity)
            .ok_or(LoginError::Refused(Refusal::UnknownUser))
    }

    /// A user's identity and whether they are disabled.
    pub(super) fn identity(&self, name: &str) -> Result<Option<(Identity, bool)>, AccountsError> {
        identity_in(&self.db(), name)
    }

    fn update_user(
        &self,
        name: &str,
        sql: &str,
        value: impl rusqlite::ToSql,
    ) -> Result<(), AccountsError> {
        let changed = self.db().execute(sql, params![name, value])?;
        if changed == 0 {
            return Err(AccountsError::NoSuchUser(name.to_owned()));
        }
        Ok(())
    }

    fn user_info(
        &self,
        db: &Connection,
        row: UserRow,
        now: UnixSeconds,
    ) -> Result<UserInfo, AccountsError> {
        Ok(UserInfo {
            identity: Identity {
                groups: groups_of(db, &row.name)?,
                user: row.name,
                role: parse_role(&row.role),
            },
            has_password: row.has_password,
            disabled: row.disabled,
            locked_until: self.policy().locked_until(row.failures, now),
            failures: row.failures.count,
            last_failure: row.failures.last,
            created: row.created,
        })
    }
}

/// A user's identity and whether they are disabled, on a locked connection.
pub(super) fn identity_in(
    db: &Connection,
    name: &str,
) -> Result<Option<(Identity, bool)>, AccountsError> {
    let row = db
        .prepare_cached("SELECT role, disabled FROM account_users WHERE name = ?1")?
        .query_row(params![name], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?))
        })
        .optional()?;
    let Some((role, disabled)) = row else {
        return Ok(None);
    };
    let identity = Identity {
        user: name.to_owned(),
        role: parse_role(&role),
        groups: groups_of(db, name)?,
    };
    Ok(Some((identity, disabled)))
}

/// A stored role; an unreadable one (a hand-edited file) gives the least.
pub(super) fn parse_role(stored: &str) -> Role {
    stored.parse().unwrap_or(Role::Reader)
}

fn groups_of(db: &Connection, name: &str) -> Result<Vec<String>, AccountsError> {
    let groups = db
        .prepare_cached("SELECT grp FROM account_memberships WHERE user = ?1 ORDER BY grp")?
        .query_map(params![name], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(groups)
}

fn user_exists(db: &Connection, name: &str) -> Result<bool, AccountsError> {
    Ok(db
        .query_row(
            "SELECT 1 FROM account_users WHERE name = ?1",
            params![name],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

fn join_group(
    db: &Connection,
    user: &str,
    group: &str,
    now: UnixSeconds,
) -> Result<(), AccountsError> {
    db.execute(
        "INSERT OR IGNORE INTO account_groups (name, created) VALUES (?1, ?2)",
        params![group, now],
    )?;
    db.execute(
        "INSERT OR IGNORE INTO account_memberships (user, grp) VALUES (?1, ?2)",
        params![user, group],
    )?;
    Ok(())
}

struct UserRow {
    name: String,
    role: String,
    has_password: bool,
    disabled: bool,
    failures: Failures,
    created: UnixSeconds,
}

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        name: r.get(0)?,
        role: r.get(1)?,
        has_password: r.get(2)?,
        disabled: r.get(3)?,
        failures: Failures {
            count: r.get(4)?,
            last: r.get(5)?,
        },
        created: r.get(6)?,
    })
}
