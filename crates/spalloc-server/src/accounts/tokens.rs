//! Personal API tokens: long random secrets a user sends as
//! `Authorization: Bearer`, instead of a password and the CSRF dance.
//!
//! Only a SHA-256 digest of each token is stored; the token itself is shown
//! once, when made. A token may expire, and its owner (or an administrator)
//! may revoke it; either ends the sessions it opened.

use super::policy::{self, UnixSeconds};
use super::users::identity_in;
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
        if policy::expired(expires, now) {
            return Ok(None);
        }
        let Some((identity, false)) = identity_in(&db, &user)? else {
            return Ok(None);
        };
        if self.policy().should_touch(last_used, now) {
            db.prepare_cached("UPDATE account_tokens SET last_used = ?2 WHERE id = ?1")?
                .execute(params![id, now])?;
        }
        Ok(Some((identity, TokenId(id))))
    }
}
