//! `spalloc-where-is`: find out the location (physical or logical) of a chip or board.

fn main() {
    std::process::exit(spalloc_cli::tools::where_is::main(std::env::args_os()));
}
