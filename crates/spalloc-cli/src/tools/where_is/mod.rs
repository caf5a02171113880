//! `spalloc-where-is`: find a board or chip by any of its coordinates.

pub mod view;

use crate::failure::Failure;
use crate::output::{print_json, print_line};
use crate::script::{connect, exit_status_json, start, usage_error, Started};
use crate::server_args::ServerArgs;
use clap::{ArgGroup, Parser};
use spalloc::{ProtocolClient, WhereIs};
use std::ffi::OsString;

/// The command line of `spalloc-where-is`.
#[derive(Debug, Parser)]
#[command(
    name = "spalloc-where-is",
    version,
    about = "Find out the location (physical or logical) of a chip or board.",
    infer_long_args = true,
    group(ArgGroup::new("query").required(true).multiple(false)
        .args(["board", "physical", "chip", "job_chip"]))
)]
pub struct WhereIsArgs {
    /// specify the logical board coordinate
    #[arg(short = 'b', long, visible_alias = "logical", visible_short_alias = 'l',
          num_args = 4, value_names = ["MACHINE", "X", "Y", "Z"], allow_negative_numbers = true)]
    pub board: Option<Vec<String>>,
    /// specify a board's physical location
    #[arg(short, long, num_args = 4, value_names = ["MACHINE", "CABINET", "FRAME", "BOARD"], allow_negative_numbers = true)]
    pub physical: Option<Vec<String>>,
    /// specify a board by chip coordinates (as if the whole machine is being used)
    #[arg(short, long, num_args = 3, value_names = ["MACHINE", "X", "Y"], allow_negative_numbers = true)]
    pub chip: Option<Vec<String>>,
    /// specify the chip coordinates of a chip within a job's boards
    #[arg(short, long = "job-chip", num_args = 3, value_names = ["JOB_ID", "X", "Y"], allow_negative_numbers = true)]
    pub job_chip: Option<Vec<String>>,
    /// print the location as one line of JSON; nothing there and other
    /// errors as {"error": ..., "exit_code": N}
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerArgs,
}

/// A number given on the command line, or the reference's error text.
fn integer(text: &str) -> Result<i64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("Error: invalid literal for int() with base 10: '{text}'"))
}

impl WhereIsArgs {
    /// The query, and whether to show the chip's position within its board.
    pub fn query(&self) -> Result<(WhereIs, bool), String> {
        if let Some([machine, x, y, z]) = self.board.as_deref() {
            return Ok((
                WhereIs::Board {
                    machine: machine.clone(),
                    x: integer(x)?,
                    y: integer(y)?,
                    z: integer(z)?,
                },
                false,
            ));
        }
        if let Some([machine, cabinet, frame, board]) = self.physical.as_deref() {
            return Ok((
                WhereIs::Physical {
                    machine: machine.clone(),
                    cabinet: integer(cabinet)?,
                    frame: integer(frame)?,
                    board: integer(board)?,
                },
                false,
            ));
        }
        if let Some([machine, x, y]) = self.chip.as_deref() {
            return Ok((
                WhereIs::Chip {
                    machine: machine.clone(),
                    x: integer(x)?,
                    y: integer(y)?,
                },
                true,
            ));
        }
        if let Some([job_id, x, y]) = self.job_chip.as_deref() {
            let job_id = u64::try_from(integer(job_id)?)
                .map_err(|_| format!("Error: a job ID cannot be negative: '{job_id}'"))?;
            return Ok((
                WhereIs::JobChip {
                    job_id,
                    x: integer(x)?,
                    y: integer(y)?,
                },
                true,
            ));
        }
        Err("one of --board, --physical, --chip or --job-chip is required".to_owned())
    }
}

/// Runs `spalloc-where-is` with `argv` (program name first); returns the exit status.
pub fn main(argv: impl IntoIterator<Item = OsString>) -> i32 {
    let Started {
        args,
        mut command,
        settings,
        config,
    } = match start::<WhereIsArgs>(argv, |c, _| c) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let (query, show_board_chip) = match args.query() {
        Ok(q) => q,
        Err(message) => usage_error(&mut command, &message),
    };
    let outcome = match crate::v2_service::v2_client(&settings, &config) {
        Ok(Some(client)) => {
            v2_where_is(&client, &query).and_then(|record| show(record, show_board_chip, args.json))
        }
        Ok(None) => connect(&settings).and_then(|client| {
            // The reference sends where_is with no timeout.
            client.set_timeout(None);
            run(&client, &query, show_board_chip, args.json)
        }),
        Err(failure) => Err(failure),
    };
    exit_status_json(outcome, args.json)
}

/// The same query over v2: the machine's lookups, or the job's chip.
/// Negative coordinates name no board.
fn v2_where_is(
    client: &spalloc::v2::Client,
    query: &WhereIs,
) -> Result<Option<spalloc::WhereIsRecord>, Failure> {
    use spalloc::v2::BoardLookup;
    let n = |v: i64| u32::try_from(v).ok();
    let found = match query {
        WhereIs::Board { machine, x, y, z } => match (n(*x), n(*y), n(*z)) {
            (Some(x), Some(y), Some(z)) => {
                client.where_is(machine, &BoardLookup::Logical { x, y, z })?
            }
            _ => None,
        },
        WhereIs::Physical {
            machine,
            cabinet,
            frame,
            board,
        } => match (n(*cabinet), n(*frame), n(*board)) {
            (Some(cabinet), Some(frame), Some(board)) => client.where_is(
                machine,
                &BoardLookup::Physical {
                    cabinet,
                    frame,
                    board,
                },
            )?,
            _ => None,
        },
        WhereIs::Chip { machine, x, y } => match (n(*x), n(*y)) {
            (Some(x), Some(y)) => client.where_is(machine, &BoardLookup::Chip { x, y })?,
            _ => None,
        },
        WhereIs::JobChip { job_id, x, y } => match (n(*x), n(*y)) {
            (Some(x), Some(y)) => match client.job(*job_id)?.where_is_chip(x, y) {
                Ok(found) => found,
                Err(spalloc::Error::Http {
                    status: 404 | 410, ..
                }) => None,
                Err(e) => return Err(e.into()),
            },
            _ => None,
        },
    };
    Ok(found)
}

impl crate::script::HasServerArgs for WhereIsArgs {
    fn server_args(&self) -> &ServerArgs {
        &self.server
    }
}

fn run(
    client: &ProtocolClient,
    query: &WhereIs,
    show_board_chip: bool,
    json: bool,
) -> Result<(), Failure> {
    show(client.where_is(query)?, show_board_chip, json)
}

/// Prints a location, or fails with the reference's exit status 4.
fn show(
    record: Option<spalloc::WhereIsRecord>,
    show_board_chip: bool,
    json: bool,
) -> Result<(), Failure> {
    let Some(record) = record else {
        return Err(Failure::new(4, "No boards at the specified location"));
    };
    if json {
        return print_json(&record);
    }
    print_line(&view::render_location(&record, show_board_chip))
}
