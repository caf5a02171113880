//! The spalloc command-line tools: `spalloc`, `spalloc-job`, `spalloc-ps`,
//! `spalloc-machine` and `spalloc-where-is`.
//!
//! Each binary in `src/bin/` is a thin `main` over one module of [`tools`].
//! The modules here hold what the tools share: terminal styling
//! ([`terminal`]), the reference's text layouts ([`render`]), Python-style
//! value text ([`python_text`]) and the `-c` command template
//! ([`command_template`]).

pub mod command_template;
pub mod ethernet_csv;
pub mod failure;
pub mod interrupt;
pub mod manual;
pub mod notification_wait;
pub mod output;
pub mod python_text;
pub mod queue_state;
pub mod quota_warning;
pub mod render;
pub mod script;
pub mod server_args;
pub mod shell_quote;
pub mod terminal;
pub mod tools;
pub mod v2_service;
pub mod v2_watch;
