//! `Key: value` blocks with right-aligned keys, as the reference's `render_definitions`.

/// Renders `(key, value)` pairs in order, keys right-aligned to the longest;
/// continuation lines of a multi-line value are indented under the value.
pub fn render_definitions<K: AsRef<str>, V: AsRef<str>>(entries: &[(K, V)]) -> String {
    const SEPARATOR: &str = ": ";
    let key_width = entries
        .iter()
        .map(|(key, _)| key.as_ref().chars().count())
        .max()
        .unwrap_or(0);
    let indent = format!("\n{}", " ".repeat(key_width + SEPARATOR.len()));
    entries
        .iter()
        .map(|(key, value)| {
            format!(
                "{:>key_width$}{SEPARATOR}{}",
                key.as_ref(),
                value.as_ref().replace('\n', &indent)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_aligns_keys_and_indents_continuations() {
        let entries = [("Key", "Value"), ("Longer key", "multi\nline"), ("A", "1")];
        assert_eq!(
            render_definitions(&entries),
            "       Key: Value\nLonger key: multi\n            line\n         A: 1"
        );
        let empty: [(&str, &str); 0] = [];
        assert_eq!(render_definitions(&empty), "");
    }
}
