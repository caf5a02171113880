//! `spalloc`: request (and allocate) a SpiNNaker machine.

fn main() {
    std::process::exit(spalloc_cli::tools::alloc::main(std::env::args_os()));
}
