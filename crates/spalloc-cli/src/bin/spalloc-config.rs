//! `spalloc-config`: show the config file search path, which files exist and
//! the effective values (the reference's `python -m spalloc.config`, extended).

fn main() {
    std::process::exit(spalloc_cli::tools::config::main(std::env::args_os()));
}
