//! Completions and man pages are generated from the command-line definitions.

#[test]
fn generates_man_pages_and_completions() {
    let dir = tempfile::tempdir().expect("tmp");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_spalloc-cli-docs"))
        .arg(dir.path())
        .status()
        .expect("runs");
    assert!(status.success());
    for tool in [
        "spalloc",
        "spalloc-job",
        "spalloc-ps",
        "spalloc-machine",
        "spalloc-where-is",
    ] {
        let page = std::fs::read_to_string(dir.path().join("man").join(format!("{tool}.1")))
            .expect("man page");
        assert!(page.contains(".TH"), "{tool}");
        assert!(dir
            .path()
            .join("completions")
            .join(format!("{tool}.bash"))
            .exists());
    }
    let page =
        std::fs::read_to_string(dir.path().join("man/spalloc-where-is.1")).unwrap_or_default();
    assert!(page.contains("job\\-chip"), "{page}");
}
