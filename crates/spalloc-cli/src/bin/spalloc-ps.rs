//! `spalloc-ps`: list all active jobs.

fn main() {
    std::process::exit(spalloc_cli::tools::ps::main(std::env::args_os()));
}
