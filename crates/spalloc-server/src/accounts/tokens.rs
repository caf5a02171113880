//! Personal API tokens: long random secrets a user sends as
//! `Authorization: Bearer`, instead of a password and the CSRF dance.
//!
//! Only a SHA-256 digest of each token is stored; the token itself is shown
//! once, when made. A token may expire, and its owner (or an administrator)
//! may revoke it; either ends the sessions it opened.

use super::policy::{self, UnixSeconds};
use super::token_cache::{CheckedToken, Versions};
use super::users::{identity_in, parse_role};
use super::{secret, Accounts, AccountsError, Identity};
use rusqlite::{params, OptionalExtension};

/// The public number of a token, used to list and revoke it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId(pub i64);

/// What is known about a token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Its number.
    pub id: TokenId,
    /// Whose it is.
    pub user: String,
    /// What its owner called it ("laptop", "CI"...).
    pub name: String,
    /// When it was made.
    pub created: UnixSeconds,
    /// When it was last used (to the minute), if ever.
    pub last_used: Option<UnixSeconds>,
    /// When it stops working, if ever.
    pub expires: Option<UnixSeconds>,
}

/// A token just made, with its secret (shown this once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// What is stored about it.
    pub info: TokenInfo,
    /// The bearer secret.
    pub secret: String,
}

/// The longest token name accepted.
pub const MAX_TOKEN_NAME: usize = 100;

impl Accounts {
    /// Makes a token for `user`, valid until `expires` if given.
    pub fn create_token(
        &self,
        user: &str,
        name: &str,
        expires: Option<UnixSeconds>,
        now: UnixSeconds,
    ) -> Result<NewToken, AccountsError> {
        let name: String = name
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_TOKEN_NAME)
            .collect();
        let token = secret::new_api_token();
        let db = self.db();
        if identity_in(&db, user)?.is_none() {
            return Err(AccountsError::NoSuchUser(user.to_owned()));
        }
        db.execute(
            "INSERT INTO account_tokens (user, name, secret_digest, created, expires)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![user, name, secret::digest(&token), now, expires],
        )?;
        let id = TokenId(db.last_insert_rowid());
        Ok(NewToken {
            info: TokenInfo {
                id,
                user: user.to_owned(),
                name,
                created: now,
                last_used: None,
                expires,
            },
            secret: token,
        })
    }

    /// A user's tokens, oldest first.
    pub fn tokens(&self, user: &str) -> Result<Vec<TokenInfo>, AccountsError> {
        let db = self.db();
        let tokens = db
            .prepare(
                "SELECT id, user, name, created, last_used, expires
                 FROM account_tokens WHERE user = ?1 ORDER BY id",
            )?
            .query_map(params![user], |r| {
                Ok(TokenInfo {
                    id: TokenId(r.get(0)?),
                    user: r.get(1)?,
                    name: r.get(2)?,
                    created: r.get(3)?,
                    last_used: r.get(4)?,
                    expires: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(tokens)
    }

    /// Revokes one of `user`'s tokens (and the sessions it opened).
    /// Returns false if `user` has no such token.
    pub fn revoke_token(&self, user: &str, id: TokenId) -> Result<bool, AccountsError> {
        let deleted = self.db().execute(
            "DELETE FROM account_tokens WHERE id = ?1 AND user = ?2",
            params![id.0, user],
        )?;
        Ok(deleted > 0)
    }

    /// Who a bearer secret belongs to, if it is a live token of an enabled
    /// user; marks it used.
    pub fn check_token(
        &self,
        token: &str,
        now: UnixSeconds,
    ) -> Result<Option<(Identity, TokenId)>, AccountsError> {
        if !token.starts_with(secret::TOKEN_PREFIX) {
            return Ok(None);
        }
        let db = self.db();
        let versions = versions_of(&db)?;
        let remembered = self
            .token_cache()
            .get(token, versions)
            .map(|(c, fresh)| (c.clone(), fresh));
        let found = match remembered {
            Some((checked, true)) => Some(checked),
            Some((checked, false)) => recheck_token(&db, checked)?,
            None => self.read_token(&db, token)?,
        };
        let checked = match found {
            Some(checked) => checked,
            None => {
                self.token_cache().remove(token);
                return Ok(None);
            }
        };
        if policy::expired(checked.expires, now) {
            self.token_cache().remove(token);
            return Ok(None);
        }
        let mut checked = checked;
        if self.policy().should_touch(checked.last_used, now) {
            db.prepare_cached("UPDATE account_tokens SET last_used = ?2 WHERE id = ?1")?
                .execute(params![checked.id.0, now])?;
            checked.last_used = Some(now);
        }
        // Remembered against the counters as they are after our own touch,
        // so that the touch does not make the entry stale.
        let versions = versions_of(&db)?;
        let result = (checked.identity.clone(), checked.id);
        self.token_cache().insert(token, checked, versions);
        Ok(Some(result))
    }

    /// What the database says about a bearer secret: `None` unless it is a
    /// token of an existing, enabled user.
    fn read_token(
        &self,
        db: &rusqlite::Connection,
        token: &str,
    ) -> Result<Option<CheckedToken>, AccountsError> {
        let row = db
            .prepare_cached(
                "SELECT id, user, last_used, expires FROM account_tokens
                 WHERE secret_digest = ?1",
            )?
            .query_row(params![secret::digest(token)], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<UnixSeconds>>(2)?,
                    r.get::<_, Option<UnixSeconds>>(3)?,
                ))
            })
            .optional()?;
        let Some((id, user, last_used, expires)) = row else {
            return Ok(None);
        };
        let Some((identity, false)) = identity_in(db, &user)? else {
            return Ok(None);
        };
        Ok(Some(CheckedToken {
            identity,
            id: TokenId(id),
            last_used,
            expires,
        }))
    }
}

/// A remembered token checked again after the database changed, with one
/// query by its number: `None` if it was revoked or its user deleted or
/// disabled; otherwise with its user's role and groups as they are now.
fn recheck_token(
    db: &rusqlite::Connection,
    checked: CheckedToken,
) -> Result<Option<CheckedToken>, AccountsError> {
    let row = db
        .prepare_cached(
            "SELECT u.role, u.disabled, t.last_used, t.expires,
                    (SELECT group_concat(m.grp, char(31)) FROM account_memberships m
                     WHERE m.user = u.name)
             FROM account_tokens t JOIN account_users u ON u.name = t.user
             WHERE t.id = ?1 AND t.user = ?2",
        )?
        .query_row(params![checked.id.0, checked.identity.user], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, Option<UnixSeconds>>(2)?,
                r.get::<_, Option<UnixSeconds>>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })
        .optional()?;
    let Some((role, false, last_used, expires, groups)) = row else {
        return Ok(None);
    };
    // Group names never contain the separator (see `check_name`).
    let mut groups: Vec<String> = groups
        .map(|g| g.split('\u{1f}').map(str::to_owned).collect())
        .unwrap_or_default();
    groups.sort();
    Ok(Some(CheckedToken {
        identity: Identity {
            user: checked.identity.user,
            role: parse_role(&role),
            groups,
        },
        id: checked.id,
        last_used,
        expires,
    }))
}

/// The counters a remembered token check is valid against (see
/// [`super::token_cache`]).
fn versions_of(db: &rusqlite::Connection) -> Result<Versions, AccountsError> {
    let data_version = db
        .prepare_cached("PRAGMA data_version")?
        .query_row([], |r| r.get::<_, i64>(0))?;
    Ok(Versions {
        own_changes: db.total_changes(),
        data_version,
    })
}
