//! `spalloc`: request (and allocate) a SpiNNaker machine; `spalloc login`
//! and `spalloc logout` for v2 services.

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(status) = spalloc_cli::tools::login::dispatch(&argv) {
        std::process::exit(status);
    }
    std::process::exit(spalloc_cli::tools::alloc::main(argv));
}
