//! `spalloc-server user ...`: managing accounts from the command line.
//!
//! The accounts live in the server's state file, found from `--config`
//! (`.NAME.state.sqlite` next to it, as the server finds it) or named with
//! `--state`. The commands work while the server runs: the server reads
//! accounts from the file on every request, so a disabled user or a revoked
//! token stops working at once.
//!
//! Passwords are read from standard input when it is not a terminal (one
//! line), else prompted for twice without echo.

use crate::accounts::{Accounts, AccountsError, NewUser, Role, TokenId, UnixSeconds};
use clap::{Args, Subcommand};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

/// The subcommands of `spalloc-server` that are not "run the server".
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage the users of the HTTP API (kept in the state file).
    #[command(subcommand)]
    User(UserCommand),
    /// List board reports and boards out of service; take boards out of
    /// service or return them (kept in the state file).
    #[command(subcommand)]
    Board(crate::board_cli::BoardCommand),
    /// Bring machine definitions from allocserv (`machine import DEFS.json`).
    #[command(subcommand)]
    Machine(crate::machine_cli::MachineCommand),
}

/// Which state file holds the accounts.
#[derive(Debug, Clone, Args)]
pub struct StateFile {
    /// The server's configuration file; the accounts are in its state file.
    #[arg(long, value_name = "CONFIG")]
    config: Option<PathBuf>,
    /// The state file itself [default: `.NAME.state.sqlite` next to CONFIG].
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
}

/// `spalloc-server user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (the password is read from standard input, or prompted for).
    Add {
        /// The user name: letters, digits and . _ - @ +.
        name: String,
        /// reader, user or admin.
        #[arg(long, default_value = "user")]
        role: Role,
        /// A group to put them in (repeat for more).
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        /// No password: the user can only use API tokens.
        #[arg(long)]
        no_password: bool,
        /// Where the accounts are kept.
        #[command(flatten)]
        state: StateFile,
    },
    /// List the users.
    List {
        /// Where the accounts are kept.
        #[command(flatten)]
        state: StateFile,
    },
    /// Set a user's password (ends their password sessions, clears a lock-out).
    Passwd {
        /// The user.
        name: String,
        /// Where the accounts are kept.
        #[command(flatten)]
        state: StateFile,
    },
    /// Disable a user: no log-in, and their sessions and tokens stop working.
    Disable {
        /// The user.
        name: String,
        /// Where the accounts are kept.
        #[command(flatten)]
        state: StateFile,
    },
    /// Enable a disabled user again.
    Enable {
        /// The user.
        name: String,
        /// Where the accounts are kept.
        #[command(flatten)]
        state: StateFile,
    },
    /// Clear a lock-out caused by failed log-ins.
    Unlock {
        /// The user.
        name: String,
        /// Where the accounts are kept.
        #[command(flatten)]
        state: StateFile,
    },
    /// Change a user's role.
    Role {
        /// The user.
        name: String,
        /// reader, user or admin.
        role: Role,
        /// Where the accounts are kept.
        #[command(flatten)]
        state: StateFile,
    },
    /// Delete a user with their sessions and tokens.
    Delete {
        /// The user.
        name: String,
        /// Where the accounts are kept.
        #[command(flatten)]
        state: StateFile,
    },
    /// Make a personal API token for a user and print it (shown only once).
    Token {
        /// The user.
        name: String,
        /// What to call the token.
        #[arg(long, default_value = "cli")]
        label: String,
        /// Make it stop working after this many days.
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_in_days: Option<u32>,
        /// Where the accounts are kept.
        #[command(flatten)]
        state: StateFile,
    },
    /// List a user's API tokens.
    Tokens {
        /// The user.
        name: String,
        /// Where the accounts are kept.
        #[command(flatten)]
        state: StateFile,
    },
    /// Revoke one of a user's API tokens (by the number `tokens` lists).
    Revoke {
        /// The user.
        name: String,
        /// The token's number.
        id: i64,
        /// Where the accounts are kept.
        #[command(flatten)]
        state: StateFile,
    },
}

/// Runs a subcommand; the exit status says whether it worked.
pub fn run(command: Command) -> ExitCode {
    let result = match command {
        Command::User(command) => run_user(command),
        Command::Board(command) => crate::board_cli::run_board(command),
        Command::Machine(command) => crate::machine_cli::run_machine(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("spalloc-server: {message}");
            ExitCode::from(1)
        }
    }
}

fn run_user(command: UserCommand) -> Result<(), String> {
    let now = crate::clock::now() as UnixSeconds;
    match command {
        UserCommand::Add {
            name,
            role,
            groups,
            no_password,
            state,
        } => {
            let accounts = open(&state)?;
            if accounts.user(&name, now).map_err(text)?.is_some() {
                return Err(AccountsError::UserExists(name).to_string());
            }
            let password = if no_password {
                None
            } else {
                Some(read_password(&format!("password for {name}"))?)
            };
            accounts
                .add_user(
                    &NewUser {
                        name: name.clone(),
                        role,
                        password,
                        groups,
                    },
                    now,
                )
                .map_err(text)?;
            eprintln!("added user {name} ({role})");
        }
        UserCommand::List { state } => {
            let users = open(&state)?.users(now).map_err(text)?;
            println!(
                "{:<20} {:<7} {:<10} {:<9} GROUPS",
                "NAME", "ROLE", "STATUS", "PASSWORD"
            );
            for u in users {
                let status = if u.disabled {
                    "disabled".to_owned()
                } else if u.locked_until.is_some() {
                    "locked".to_owned()
                } else {
                    "enabled".to_owned()
                };
                println!(
                    "{:<20} {:<7} {:<10} {:<9} {}",
                    u.identity.user,
                    u.identity.role,
                    status,
                    if u.has_password { "yes" } else { "no" },
                    u.identity.groups.join(",")
                );
            }
        }
        UserCommand::Passwd { name, state } => {
            let accounts = open(&state)?;
            if accounts.user(&name, now).map_err(text)?.is_none() {
                return Err(AccountsError::NoSuchUser(name).to_string());
            }
            let password = read_password(&format!("new password for {name}"))?;
            accounts.set_password(&name, &password).map_err(text)?;
            eprintln!("password of {name} changed");
        }
        UserCommand::Disable { name, state } => {
            open(&state)?.set_disabled(&name, true).map_err(text)?;
            eprintln!("disabled {name}");
        }
        UserCommand::Enable { name, state } => {
            open(&state)?.set_disabled(&name, false).map_err(text)?;
            eprintln!("enabled {name}");
        }
        UserCommand::Unlock { name, state } => {
            open(&state)?.unlock(&name).map_err(text)?;
            eprintln!("unlocked {name}");
        }
        UserCommand::Role { name, role, state } => {
            open(&state)?.set_role(&name, role).map_err(text)?;
            eprintln!("{name} is now {role}");
        }
        UserCommand::Delete { name, state } => {
            open(&state)?.delete_user(&name).map_err(text)?;
            eprintln!("deleted {name}");
        }
        UserCommand::Token {
            name,
            label,
            expires_in_days,
            state,
        } => {
            let expires = expires_in_days.map(|d| now + UnixSeconds::from(d) * 86_400);
            let token = open(&state)?
                .create_token(&name, &label, expires, now)
                .map_err(text)?;
            eprintln!(
                "token {} for {name}; send it as \"Authorization: Bearer TOKEN\" (shown only once):",
                token.info.id.0
            );
            println!("{}", token.secret);
        }
        UserCommand::Tokens { name, state } => {
            let accounts = open(&state)?;
            if accounts.user(&name, now).map_err(text)?.is_none() {
                return Err(AccountsError::NoSuchUser(name).to_string());
            }
            println!(
                "{:<6} {:<20} {:<22} {:<22} EXPIRES",
                "ID", "LABEL", "CREATED", "LAST USED"
            );
            for t in accounts.tokens(&name).map_err(text)? {
                println!(
                    "{:<6} {:<20} {:<22} {:<22} {}",
                    t.id.0,
                    t.name,
                    time(Some(t.created)),
                    time(t.last_used),
                    time(t.expires)
                );
            }
        }
        UserCommand::Revoke { name, id, state } => {
            if !open(&state)?
                .revoke_token(&name, TokenId(id))
                .map_err(text)?
            {
                return Err(format!("{name} has no token {id}"));
            }
            eprintln!("revoked token {id} of {name}");
        }
    }
    Ok(())
}

impl StateFile {
    /// The state file named by `--state` or found from `--config`.
    pub fn path(&self) -> Result<PathBuf, String> {
        match (&self.state, &self.config) {
            (Some(state), _) => Ok(state.clone()),
            (None, Some(config)) => {
                if !config.is_file() {
                    return Err(format!("no configuration file {}", config.display()));
                }
                Ok(crate::store::default_state_path(config))
            }
            (None, None) => Err("say which server: --config CONFIG or --state FILE".into()),
        }
    }
}

/// Opens the accounts in the state file named by `--state` or `--config`.
fn open(target: &StateFile) -> Result<Accounts, String> {
    let path = target.path()?;
    Accounts::open(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// A password from standard input (first line) or, on a terminal, a
/// prompt asked twice.
fn read_password(what: &str) -> Result<String, String> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = rpassword::prompt_password(format!("{what}: ")).map_err(text)?;
        let again = rpassword::prompt_password(format!("{what} (again): ")).map_err(text)?;
        if first != again {
            return Err("the passwords differ".into());
        }
        first
    } else {
        let mut line = String::new();
        stdin.lock().read_line(&mut line).map_err(text)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.is_empty() {
        return Err("the password is empty".into());
    }
    Ok(password)
}

fn time(t: Option<UnixSeconds>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| crate::rest::time_format::instant(t as f64).unwrap_or_default(),
    )
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}
