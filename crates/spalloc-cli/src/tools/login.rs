//! `spalloc login` and `spalloc logout`: exchange a password for a personal
//! API token of a v2 service, kept in the user's config directory readable
//! by its owner only ([`default_token_file`]); and revoke and forget it.
//! The password itself is never written anywhere.

use crate::failure::Failure;
use crate::script::{exit_status, load_config};
use clap::Parser;
use spalloc::v2::credentials::{
    default_token_file, read_token_file, token_file_note, write_token_file, PASSWORD_VAR, USER_VAR,
};
use spalloc::v2::{Client, Credentials};
use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

/// The command line of `spalloc login`.
#[derive(Debug, Parser)]
#[command(
    name = "spalloc login",
    about = "Log in to a v2 spalloc service and keep a personal API token for the tools."
)]
pub struct LoginArgs {
    /// URL of the v2 service (default: url from the config files)
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// user name (default: SPALLOC_USER, else asked)
    #[arg(long)]
    pub user: Option<String>,
    /// days until the token expires (default: never)
    #[arg(long, value_name = "DAYS")]
    pub expires_days: Option<u32>,
    /// a PEM file of certificates to trust besides the system's
    #[arg(long = "ca-cert", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

/// The command line of `spalloc logout`.
#[derive(Debug, Parser)]
#[command(
    name = "spalloc logout",
    about = "Revoke the token `spalloc login` made and forget it."
)]
pub struct LogoutArgs {
    /// a PEM file of certificates to trust besides the system's
    #[arg(long = "ca-cert", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

/// If `argv` is `spalloc login …` or `spalloc logout …`, runs it and
/// returns the exit status.
pub fn dispatch(argv: &[OsString]) -> Option<i32> {
    let word = argv.get(1)?.to_str()?;
    let rest = || {
        std::iter::once(OsString::from(format!("spalloc {word}"))).chain(argv[2..].iter().cloned())
    };
    match word {
        "login" => Some(exit_status(login(LoginArgs::parse_from(rest())))),
        "logout" => Some(exit_status(logout(LogoutArgs::parse_from(rest())))),
        _ => None,
    }
}

fn login(args: LoginArgs) -> Result<(), Failure> {
    let config = load_config()?;
    let url = args.url.or(config.url.clone()).ok_or_else(|| {
        Failure::new(
            2,
            "spalloc login needs the service: give --url https://host/spalloc/ or set url in the [spalloc] section of a config file",
        )
    })?;
    let user = match args.user.or_else(|| std::env::var(USER_VAR).ok()) {
        Some(u) if !u.trim().is_empty() => u,
        _ => ask("User name: ")?,
    };
    let password = match std::env::var(PASSWORD_VAR) {
        Ok(p) => p,
        Err(_) => ask_password(&format!("Password for {user}: "))?,
    };
    let client = Client::builder(url.clone())
        .credentials(Credentials::password(user.clone(), password))
        .ca_cert_opt(args.ca_cert.or(config.ca_cert.clone()))
        .build()?;
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "this computer".into());
    let token = client.create_token(&format!("spalloc login on {host}"), args.expires_days)?;
    let file = default_token_file();
    write_token_file(
        &file,
        &token.token,
        &[("url", url.clone()), ("id", token.info.id.to_string())],
    )?;
    println!(
        "Logged in to {url} as {user}; the tools will use the token in {}",
        file.display()
    );
    Ok(())
}

fn logout(args: LogoutArgs) -> Result<(), Failure> {
    let config = load_config()?;
    let file = default_token_file();
    if !file.exists() {
        return Err(Failure::new(
            1,
            format!("Not logged in: there is no token file {}", file.display()),
        ));
    }
    let token = read_token_file(&file)?;
    let url = token_file_note(&file, "url").or(config.url.clone());
    let id = token_file_note(&file, "id").and_then(|id| id.parse::<i64>().ok());
    let revoked = match (url, id) {
        (Some(url), Some(id)) => Client::builder(url)
            .credentials(Credentials::Token(token))
            .ca_cert_opt(args.ca_cert.or(config.ca_cert.clone()))
            .build()
            .and_then(|c| c.revoke_token(id)),
        _ => Err(spalloc::Error::InvalidRequest(
            "the token file does not say which server and token it is".into(),
        )),
    };
    std::fs::remove_file(&file)
        .map_err(|e| Failure::new(1, format!("could not remove {}: {e}", file.display())))?;
    match revoked {
        Ok(()) => {
            println!("Logged out: the token is revoked and {} removed", file.display());
            Ok(())
        }
        Err(e) => Err(Failure::new(
            1,
            format!(
                "Removed {}, but the server did not revoke the token ({e}); it may have expired or been revoked already",
                file.display()
            ),
        )),
    }
}

/// A line from the terminal (or stdin), after a prompt on stderr.
fn ask(prompt: &str) -> Result<String, Failure> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::new(1, format!("could not read the answer: {e}")))?;
    Ok(line.trim().to_owned())
}

/// A password, unechoed on a terminal; refused (with how to give one)
/// when there is no terminal to ask.
fn ask_password(prompt: &str) -> Result<String, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::new(
            2,
            format!("no terminal to ask for the password: set {PASSWORD_VAR}"),
        ));
    }
    rpassword::prompt_password(prompt)
        .map_err(|e| Failure::new(1, format!("could not read the password: {e}")))
}
