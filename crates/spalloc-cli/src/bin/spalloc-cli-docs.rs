//! `spalloc-cli-docs OUTPUT_DIR`: writes the six tools' man pages
//! (`OUTPUT_DIR/man/NAME.1`) and shell completions (`OUTPUT_DIR/completions/`)
//! generated from their command-line definitions and their manual text
//! (`spalloc_cli::manual`). `scripts/install.sh` puts them in place.

use clap::{CommandFactory, Parser};
use clap_complete::Shell;
use spalloc_cli::{manual, tools};
use std::path::{Path, PathBuf};

/// The command line of `spalloc-cli-docs`.
#[derive(Debug, Parser)]
#[command(
    name = "spalloc-cli-docs",
    version,
    about = "Write the spalloc tools' man pages and shell completions.",
    long_about = "Write the man pages of spalloc, spalloc-job, spalloc-ps, spalloc-machine, \
spalloc-where-is and spalloc-config into OUTPUT_DIR/man (NAME.1), and their bash (NAME.bash), \
zsh (_NAME), fish (NAME.fish), elvish (NAME.elv) and PowerShell (_NAME.ps1) completions into \
OUTPUT_DIR/completions. scripts/install.sh runs it and copies the files where man and the \
shells look for them."
)]
struct DocsArgs {
    /// the folder to write man/ and completions/ into (created if needed)
    output_dir: PathBuf,
}

fn main() {
    let args = DocsArgs::parse();
    let commands = [
        tools::alloc::args::AllocArgs::command(),
        tools::job::JobArgs::command(),
        tools::ps::PsArgs::command(),
        tools::machine::MachineArgs::command(),
        tools::where_is::WhereIsArgs::command(),
        tools::config::ConfigArgs::command(),
    ];
    if let Err(e) = write_all(&args.output_dir, commands) {
        eprintln!("cannot write to {}: {e}", args.output_dir.display());
        std::process::exit(1);
    }
}

/// One man page: clap's name, synopsis, description and options, then the
/// manual's sections, then the version.
fn man_page(command: clap::Command) -> std::io::Result<Vec<u8>> {
    let name = command.get_name().to_owned();
    let man = clap_mangen::Man::new(command).manual("spalloc tools");
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    page.extend_from_slice(manual::roff(&name).as_bytes());
    man.render_version_section(&mut page)?;
    Ok(page)
}

fn write_all(dir: &Path, commands: [clap::Command; 6]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("man"))?;
    std::fs::create_dir_all(dir.join("completions"))?;
    for mut command in commands {
        let name = command.get_name().to_owned();
        std::fs::write(
            dir.join("man").join(format!("{name}.1")),
            man_page(command.clone())?,
        )?;
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::Elvish,
            Shell::PowerShell,
        ] {
            clap_complete::generate_to(shell, &mut command, &name, dir.join("completions"))?;
        }
    }
    Ok(())
}
