//! Sessions: what a `JSESSIONID` cookie stands for.
//!
//! A logged-in session is a row of `account_sessions` (the id's digest,
//! the user, the CSRF token, when it was made and last used, and the token
//! that opened it, if any), so it survives a restart. It ends when unused
//! for [`Policy::session_idle_seconds`](super::Policy), at log-out, when the
//! user's password changes (password sessions), or when the token that
//! opened it is revoked or expires. Sessions not yet logged in stay in
//! memory ([`super::anonymous`]).

use super::policy::{self, UnixSeconds};
use super::tokens::TokenId;
use super::users::identity_in;
use super::{secret, Accounts, AccountsError, Identity};
use rusqlite::{params, OptionalExtension};

/// A session just made: the id goes in the cookie, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The `JSESSIONID` value.
    pub id: String,
    /// Its CSRF token.
    pub csrf: String,
}

/// A live logged-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Whose it is.
    pub identity: Identity,
    /// The token changing requests must carry in the CSRF header.
    pub csrf: String,
    /// The API token that opened it, or `None` for a password log-in.
    pub via_token: Option<TokenId>,
}

impl Accounts {
    /// Opens a session for the log-in form: not logged in, kept in memory.
    pub fn start_anonymous_session(&self, now: UnixSeconds) -> NewSession {
        let session = NewSession {
            id: secret::new_session_id(),
            csrf: secret::new_csrf_token(),
        };
        let policy = *self.policy();
        self.anonymous().insert(
            &policy,
            secret::digest(&session.id),
            session.csrf.clone(),
            now,
        );
        session
    }

    /// The CSRF token of a not-yet-logged-in session, if it is live.
    pub fn anonymous_csrf(&self, id: &str, now: UnixSeconds) -> Option<String> {
        let policy = *self.policy();
        self.anonymous().csrf(&policy, &secret::digest(id), now)
    }

    /// Opens a logged-in session for `user` (after a password log-in, or
    /// for a bearer token's holder with `via_token`), and clears out
    /// sessions that have expired.
    pub fn start_session(
        &self,
        user: &str,
        via_token: Option<TokenId>,
        now: UnixSeconds,
    ) -> Result<NewSession, AccountsError> {
        let session = NewSession {
            id: secret::new_session_id(),
            csrf: secret::new_csrf_token(),
        };
        let db = self.db();
        db.execute(
            "DELETE FROM account_sessions WHERE last_used <= ?1",
            params![now.saturating_sub(self.policy().session_idle_seconds)],
        )?;
        db.execute(
            "INSERT INTO account_sessions (id_digest, user, csrf, created, last_used, via_token)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
            params![
                secret::digest(&session.id),
                user,
                session.csrf,
                now,
                via_token.map(|t| t.0)
            ],
        )?;
        Ok(session)
    }

    /// The logged-in session with this id, if it is live at `now` and its
    /// user is enabled; marks it used.
    pub fn session(&self, id: &str, now: UnixSeconds) -> Result<Option<Session>, AccountsError> {
        let digest = secret::digest(id);
        let db = self.db();
        let row = db
            .prepare_cached(
                "SELECT s.user, s.csrf, s.last_used, s.via_token, t.expires
                 FROM account_sessions s
                 LEFT JOIN account_tokens t ON t.id = s.via_token
                 WHERE s.id_digest = ?1",
            )?
            .query_row(params![digest], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, UnixSeconds>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<UnixSeconds>>(4)?,
                ))
            })
            .optional()?;
        let Some((user, csrf, last_used, via_token, token_expires)) = row else {
            return Ok(None);
        };
        if self.policy().session_expired(last_used, now) || policy::expired(token_expires, now) {
            db.execute(
                "DELETE FROM account_sessions WHERE id_digest = ?1",
                params![digest],
            )?;
            return Ok(None);
        }
        let Some((identity, false)) = identity_in(&db, &user)? else {
            return Ok(None);
        };
        if self.policy().should_touch(Some(last_used), now) {
            db.prepare_cached("UPDATE account_sessions SET last_used = ?2 WHERE id_digest = ?1")?
                .execute(params![digest, now])?;
        }
        Ok(Some(Session {
            identity,
            csrf,
            via_token: via_token.map(TokenId),
        }))
    }

    /// Ends a session, logged in or not. Returns whether there was one.
    pub fn end_session(&self, id: &str) -> Result<bool, AccountsError> {
        let digest = secret::digest(id);
        let anonymous = self.anonymous().remove(&digest);
        let stored = self.db().execute(
            "DELETE FROM account_sessions WHERE id_digest = ?1",
            params![digest],
        )?;
        Ok(anonymous || stored > 0)
    }

    /// How many logged-in sessions are stored (expired ones included until
    /// swept).
    pub fn session_count(&self) -> Result<usize, AccountsError> {
        let n: i64 = self
            .db()
            .query_row("SELECT COUNT(*) FROM account_sessions", [], |r| r.get(0))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}
