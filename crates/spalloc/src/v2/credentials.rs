//! Who the v2 client is: a personal API token, a user name and password, or
//! nobody, and where each comes from.
//!
//! In order of precedence: `SPALLOC_TOKEN`; the `token` config key; the
//! `token_file` config key (a file holding the token); the token file
//! `spalloc login` writes ([`default_token_file`]); `SPALLOC_USER` and
//! `SPALLOC_PASSWORD`; a user and password inside the URL
//! (`https://user:pw@host/spalloc/`, as SpiNNMan accepts). Passwords are
//! never read from or written to a config file.

use crate::config::Config;
use crate::error::{Error, Result};
use std::fmt;
use std::path::{Path, PathBuf};

/// The environment variable holding a bearer token.
pub const TOKEN_VAR: &str = "SPALLOC_TOKEN";
/// The environment variable holding a user name (SpiNNMan's).
pub const USER_VAR: &str = "SPALLOC_USER";
/// The environment variable holding a password (SpiNNMan's).
pub const PASSWORD_VAR: &str = "SPALLOC_PASSWORD";

/// How the client proves who it is.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Credentials {
    /// No credentials: only a server that lets anyone in will answer.
    #[default]
    Anonymous,
    /// A personal API token, sent as `Authorization: Bearer` on every request.
    Token(String),
    /// A user name and password, for the form log-in (with its session
    /// cookie and CSRF token), renewed whenever the server forgets the session.
    Password {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
}

impl fmt::Debug for Credentials {
    /// Never shows a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => write!(f, "Anonymous"),
            Credentials::Token(_) => write!(f, "Token(..)"),
            Credentials::Password { user, .. } => write!(f, "Password {{ user: {user:?}, .. }}"),
        }
    }
}

impl Credentials {
    /// A user name and password.
    pub fn password(user: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials::Password {
            user: user.into(),
            password: password.into(),
        }
    }

    /// Short words for messages: `token`, `user NAME`, `no credentials`.
    pub fn describe(&self) -> String {
        match self {
            Credentials::Anonymous => "no credentials".into(),
            Credentials::Token(_) => "a token".into(),
            Credentials::Password { user, .. } => format!("user {user}"),
        }
    }

    /// The credentials from the environment and `config` (see the module
    /// documentation for the order), with `url`'s user and password last.
    pub fn find(config: &Config, url: &str) -> Result<Credentials> {
        Self::find_with(config, url, |name| std::env::var(name).ok())
    }

    /// [`Credentials::find`] with the environment given as a function (for tests).
    pub fn find_with(
        config: &Config,
        url: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Credentials> {
        let present = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        if let Some(token) = present(env(TOKEN_VAR)) {
            return Ok(Credentials::Token(token.trim().to_owned()));
        }
        if let Some(token) = present(config.token.clone()) {
            return Ok(Credentials::Token(token.trim().to_owned()));
        }
        if let Some(file) = &config.token_file {
            return read_token_file(file).map(Credentials::Token);
        }
        let default = default_token_file();
        if default.exists() {
            return read_token_file(&default).map(Credentials::Token);
        }
        if let (Some(user), Some(password)) = (present(env(USER_VAR)), env(PASSWORD_VAR)) {
            return Ok(Credentials::password(user, password));
        }
        if let Some((user, password)) = super::url::user_info(url) {
            return Ok(Credentials::password(user, password));
        }
        Ok(Credentials::Anonymous)
    }
}

/// Where `spalloc login` keeps the token: `spalloc-token` beside the user's
/// config file (`$XDG_CONFIG_HOME/spalloc-token`, by default
/// `~/.config/spalloc-token`), readable by its owner only.
pub fn default_token_file() -> PathBuf {
    let user_file = crate::config::user_config_file();
    user_file.with_file_name("spalloc-token")
}

/// The token in a file: its first line that is neither blank nor a `#`
/// comment, trimmed. (`spalloc login` adds comments naming the server and
/// the token's ID, for `spalloc logout`.)
pub fn read_token_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::InvalidRequest(format!(
            "could not read the token file {}: {e}",
            path.display()
        ))
    })?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .ok_or_else(|| {
            Error::InvalidRequest(format!(
                "the token file {} is empty (run `spalloc login` again)",
                path.display()
            ))
        })
}

/// The value of a `# key = value` comment in a token file, if present.
pub fn token_file_note(path: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.trim().strip_prefix('#')?.split_once('=')?;
        (k.trim() == key).then(|| v.trim().to_owned())
    })
}

/// Writes a token file readable by its owner only (mode 0600 on Unix, set
/// when the file is made, so the secret is never readable by others), with
/// `notes` as `# key = value` comments.
pub fn write_token_file(path: &Path, token: &str, notes: &[(&str, String)]) -> Result<()> {
    use std::io::Write;
    let fail = |e: std::io::Error| {
        Error::InvalidRequest(format!(
            "could not write the token file {}: {e}",
            path.display()
        ))
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(fail)?;
    let mut text = String::new();
    for (key, value) in notes {
        text.push_str(&format!("# {key} = {value}\n"));
    }
    text.push_str(token);
    text.push('\n');
    file.write_all(text.as_bytes()).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn a_token_in_the_environment_wins_over_everything_else() {
        let config = Config {
            token: Some("from-config".into()),
            ..Config::default()
        };
        let c = Credentials::find_with(
            &config,
            "http://u:p@h/",
            env(&[
                (TOKEN_VAR, "from-env"),
                (USER_VAR, "u"),
                (PASSWORD_VAR, "p"),
            ]),
        )
        .unwrap();
        assert_eq!(c, Credentials::Token("from-env".into()));
        let c = Credentials::find_with(&config, "http://h/", env(&[])).unwrap();
        assert_eq!(c, Credentials::Token("from-config".into()));
    }

    #[test]
    fn a_token_file_is_read_and_an_empty_one_is_an_error_naming_it() {
        let dir = std::env::temp_dir().join(format!("spalloc-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tok");
        std::fs::write(&file, "\n  spalloc_abc  \n").unwrap();
        let config = Config {
            token_file: Some(file.clone()),
            ..Config::default()
        };
        let c = Credentials::find_with(&config, "http://h/", env(&[])).unwrap();
        assert_eq!(c, Credentials::Token("spalloc_abc".into()));
        std::fs::write(&file, "\n").unwrap();
        let e = Credentials::find_with(&config, "http://h/", env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("tok") && e.contains("empty"), "{e}");
    }

    #[test]
    fn a_written_token_file_is_private_and_reads_back_with_its_notes() {
        let dir = std::env::temp_dir().join(format!("spalloc-credw-{}", std::process::id()));
        let file = dir.join("sub").join("token");
        write_token_file(
            &file,
            "spalloc_xyz",
            &[("id", "7".into()), ("url", "http://h/".into())],
        )
        .unwrap();
        assert_eq!(read_token_file(&file).unwrap(), "spalloc_xyz");
        assert_eq!(token_file_note(&file, "id").as_deref(), Some("7"));
        assert_eq!(token_file_note(&file, "url").as_deref(), Some("http://h/"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let shown = format!(
            "{:?} {:?}",
            Credentials::Token("sekrit".into()),
            Credentials::password("ann", "sekrit")
        );
        assert!(
            !shown.contains("sekrit") && shown.contains("ann"),
            "{shown}"
        );
    }
}
