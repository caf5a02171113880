//! `spalloc-job`: manage running jobs.

fn main() {
    std::process::exit(spalloc_cli::tools::job::main(std::env::args_os()));
}
