//! Reaching a v2 (REST) service from the tools: the client for `--url` (or
//! a config file's `url`) with the credentials found in the environment
//! and config files, and the message of a tool that does not speak v2 yet.

use crate::failure::Failure;
use crate::server_args::ServerSettings;
use spalloc::v2::{Client, Credentials};
use spalloc::Config;
use std::time::Duration;

/// The v2 client for `settings`, if they name a v2 service.
pub fn v2_client(settings: &ServerSettings, config: &Config) -> Result<Option<Client>, Failure> {
    let Some(url) = &settings.url else {
        return Ok(None);
    };
    let credentials = Credentials::find(config, url)?;
    let client = Client::builder(url.clone())
        .credentials(credentials)
        .ca_cert_opt(settings.ca_cert.clone())
        .timeout(settings.timeout.unwrap_or(Duration::from_secs(3600)))
        .build()?;
    Ok(Some(client))
}

/// The user name the credentials log in as, when they say (a token does
/// not name its user).
pub fn user_name(client: &Client) -> Option<String> {
    match client.session().credentials() {
        Credentials::Password { user, .. } => Some(user.clone()),
        _ => None,
    }
}
