//! `spalloc-cli-docs DIR`: writes shell completions (bash, zsh, fish,
//! elvish, PowerShell) and man pages for the five tools into `DIR`,
//! generated from their command-line definitions.

use clap::CommandFactory;
use clap_complete::Shell;
use spalloc_cli::tools;
use std::path::PathBuf;

fn main() {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: spalloc-cli-docs OUTPUT_DIR");
        std::process::exit(2);
    };
    let commands = [
        tools::alloc::args::AllocArgs::command(),
        tools::job::JobArgs::command(),
        tools::ps::PsArgs::command(),
        tools::machine::MachineArgs::command(),
        tools::where_is::WhereIsArgs::command(),
    ];
    if let Err(e) = write_all(&dir, commands) {
        eprintln!("cannot write to {}: {e}", dir.display());
        std::process::exit(1);
    }
}

fn write_all(dir: &std::path::Path, commands: [clap::Command; 5]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("man"))?;
    std::fs::create_dir_all(dir.join("completions"))?;
    for mut command in commands {
        let name = command.get_name().to_owned();
        let mut page = Vec::new();
        clap_mangen::Man::new(command.clone()).render(&mut page)?;
        std::fs::write(dir.join("man").join(format!("{name}.1")), page)?;
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
