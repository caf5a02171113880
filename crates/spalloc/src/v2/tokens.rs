//! Personal API tokens: what `spalloc login` and `spalloc logout` use. A
//! token is made after logging in with a password (a leaked token cannot
//! mint more), shown once, and revoked by its ID.
//!
//! Endpoints (our server's; allocserv has no such API):
//! `GET|POST …/srv/spalloc/tokens`, `DELETE …/srv/spalloc/tokens/{id}`.

use super::client::Client;
use super::session::Body;
use crate::error::Result;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// A token as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TokenInfo {
    /// Its ID, for revoking it.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// When it was made (RFC 3339).
    #[serde(default)]
    pub created: Option<String>,
    /// When it was last used.
    #[serde(default)]
    pub last_used: Option<String>,
    /// When it expires, if it does.
    #[serde(default)]
    pub expires: Option<String>,
}

/// A new token: its details and the secret, which the server shows once.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NewToken {
    /// Its details.
    #[serde(flatten)]
    pub info: TokenInfo,
    /// The secret, to send as `Authorization: Bearer`.
    pub token: String,
}

#[derive(Deserialize)]
struct TokenList {
    tokens: Vec<TokenInfo>,
}

impl Client {
    fn tokens_url(&self) -> String {
        format!("{}tokens", self.session().api_url())
    }

    /// Makes a token named `name`, expiring after `days` if given.
    pub fn create_token(&self, name: &str, days: Option<u32>) -> Result<NewToken> {
        let mut body = Map::new();
        body.insert("name".into(), json!(name));
        if let Some(d) = days {
            body.insert("expires-in-days".into(), json!(d));
        }
        let answer = self.session().request(
            "POST",
            &self.tokens_url(),
            &Body::Json(Value::Object(body)),
            Duration::from_secs(30),
        )?;
        answer.json("the new token")
    }

    /// The user's tokens.
    pub fn tokens(&self) -> Result<Vec<TokenInfo>> {
        let answer = self.session().get(&self.tokens_url())?;
        Ok(answer.json::<TokenList>("the token list")?.tokens)
    }

    /// Revokes one of the user's tokens.
    pub fn revoke_token(&self, id: i64) -> Result<()> {
        self.session().request(
            "DELETE",
            &format!("{}/{id}", self.tokens_url()),
            &Body::Empty,
            Duration::from_secs(30),
        )?;
        Ok(())
    }
}
