//! The spalloc command-line tools (work in progress).
