//! POSIX shell quoting, exactly as Python's `shlex.quote`.

/// Quotes `word` for `/bin/sh`: unchanged if it is non-empty and made only of
/// `[A-Za-z0-9_@%+=:,./-]`, otherwise wrapped in single quotes with each `'`
/// written `'"'"'`; the empty string becomes `''`.
pub fn shell_quote(word: &str) -> String {
    let is_safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !word.is_empty() && word.chars().all(is_safe) {
        return word.to_owned();
    }
    format!("'{}'", word.replace('\'', "'\"'\"'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_shlex_quote() {
        assert_eq!(shell_quote("foo"), "foo");
        assert_eq!(
            shell_quote("/tmp/spinnaker_ips_x.csv"),
            "/tmp/spinnaker_ips_x.csv"
        );
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("oh look a 'quote"), "'oh look a '\"'\"'quote'");
        assert_eq!(shell_quote("<foobar>"), "'<foobar>'");
        assert_eq!(shell_quote("café"), "'café'");
    }
}
