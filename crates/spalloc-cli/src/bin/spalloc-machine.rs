//! `spalloc-machine`: get the state of individual machines.

fn main() {
    std::process::exit(spalloc_cli::tools::machine::main(std::env::args_os()));
}
