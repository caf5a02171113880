//! Client library for spalloc (work in progress).
