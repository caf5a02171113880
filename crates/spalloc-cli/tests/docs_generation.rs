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
        "spalloc-config",
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
    // The man pages say what the README says: exit statuses, config files,
    // substitutions, JSON, examples.
    let page = std::fs::read_to_string(dir.path().join("man/spalloc.1")).unwrap_or_default();
    for wanted in [
        ".SH \"EXIT STATUS\"",
        ".SH \"CONFIGURATION FILES\"",
        ".SH \"COMMAND SUBSTITUTIONS\"",
        ".SH \"EXAMPLES\"",
        "\\fB{ethernet_ips}\\fR",
        "\\-\\-server\\-timeout",
    ] {
        assert!(page.contains(wanted), "{wanted}: {page}");
    }
    let page = std::fs::read_to_string(dir.path().join("man/spalloc-job.1")).unwrap_or_default();
    assert!(page.contains(".SH \"JSON OUTPUT\""), "{page}");
    assert!(dir.path().join("completions/_spalloc").exists());
    assert!(dir.path().join("completions/spalloc.fish").exists());
}

#[test]
fn the_docs_tool_has_a_help_and_does_not_take_it_for_a_folder() {
    let dir = tempfile::tempdir().expect("tmp");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_spalloc-cli-docs"))
        .arg("--help")
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains("Usage: spalloc-cli-docs <OUTPUT_DIR>"),
        "{help}"
    );
    assert!(!dir.path().join("--help").exists());
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_spalloc-cli-docs"))
        .status()
        .expect("runs");
    assert_eq!(status.code(), Some(2), "no folder is a usage error");
}
