//! `spalloc-config`: print the config file search path, as the reference's
//! `python -m spalloc.config` does.

fn main() {
    print!("{}", spalloc::config::search_path_description());
}
