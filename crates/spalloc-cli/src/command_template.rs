//! The `spalloc -c` command line: Python `str.format` substitution of the
//! allocated machine's details, then shell quoting.
//!
//! Two forms, told apart by the number of words after `-c`:
//!
//! * **Several words** (`-c rig-boot {} {w} {h}`): each word is expanded and
//!   then quoted as one shell word, exactly as the reference does.
//! * **One word containing whitespace** (`-c "rig-boot {} {w} {h} && python
//!   my_app.py {}"`): the word is a shell command line. Each substituted value
//!   is quoted, the rest is left for the shell, so `&&`, pipes and
//!   redirections work as the manual's example promises. (The reference quotes
//!   the whole line as a single word, so that example fails with "command not
//!   found".) A single word without whitespace is quoted as the reference does.
//!
//! Every `{}` stands for the hostname. (Python numbers them, so the manual's
//! example, which has two, fails there with `IndexError`.)

use crate::shell_quote::shell_quote;

/// The values a command template may refer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substitutions {
    /// Chip (0, 0)'s hostname: `{}`, `{0}`, `{hostname}`.
    pub hostname: String,
    /// Width in chips: `{w}`, `{width}`.
    pub width: u32,
    /// Height in chips: `{h}`, `{height}`.
    pub height: u32,
    /// The CSV file of Ethernet chip hostnames: `{ethernet_ips}`.
    pub ethernet_ips: String,
    /// The job's ID: `{id}`.
    pub job_id: u64,
}

impl Substitutions {
    /// Plausible values, for checking a template before any job exists.
    pub fn example() -> Substitutions {
        Substitutions {
            hostname: "192.168.0.1".to_owned(),
            width: 8,
            height: 8,
            ethernet_ips: "/tmp/spinnaker_ips.csv".to_owned(),
            job_id: 1,
        }
    }

    fn lookup(&self, name: &str) -> Option<FieldValue<'_>> {
        Some(match name {
            "hostname" => FieldValue::Text(&self.hostname),
            "w" | "width" => FieldValue::Integer(i64::from(self.width)),
            "h" | "height" => FieldValue::Integer(i64::from(self.height)),
            "ethernet_ips" => FieldValue::Text(&self.ethernet_ips),
            "id" => FieldValue::Integer(i64::try_from(self.job_id).unwrap_or(i64::MAX)),
            _ => return None,
        })
    }
}

/// Why a command template cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{name}` with a name that is not a substitution.
    #[error("unknown substitution {{{0}}} in the command; use {{}}, {{hostname}}, {{w}}, {{width}}, {{h}}, {{height}}, {{ethernet_ips}} or {{id}}, and write {{{{ and }}}} for literal braces")]
    UnknownName(String),
    /// `{1}` or higher: the only positional value is `{}`/`{0}`, the hostname.
    #[error("the command refers to positional value {{{0}}}, but only {{}} (the hostname) exists; use named substitutions such as {{w}}")]
    PositionalOutOfRange(usize),
    /// A lone `{` or `}`.
    #[error("unmatched brace in the command: {0}; write {{{{ or }}}} for a literal brace")]
    UnmatchedBrace(&'static str),
    /// A format specification that does not fit the value.
    #[error("cannot format {field} with the specification {spec:?}")]
    BadFormatSpec {
        /// The field being formatted.
        field: String,
        /// The specification after `:`.
        spec: String,
    },
}

/// Builds the command line run by `/bin/sh -c` from the words after `-c`.
pub fn build_command_line(
    words: &[String],
    substitutions: &Substitutions,
) -> Result<String, TemplateError> {
    if let [line] = words {
        if line.chars().any(char::is_whitespace) {
            return expand(line, substitutions, shell_quote);
        }
    }
    let quoted: Result<Vec<String>, TemplateError> = words
        .iter()
        .map(|word| expand(word, substitutions, str::to_owned).map(|w| shell_quote(&w)))
        .collect();
    Ok(quoted?.join(" "))
}

/// A value a field refers to.
#[derive(Debug, Clone, Copy)]
enum FieldValue<'a> {
    Text(&'a str),
    Integer(i64),
}

/// Python `str.format(hostname, **named)` on one word, passing each
/// substituted value through `finish` (quoting, or nothing).
pub fn expand(
    template: &str,
    substitutions: &Substitutions,
    finish: impl Fn(&str) -> String,
) -> Result<String, TemplateError> {
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '}' => return Err(TemplateError::UnmatchedBrace("single '}'")),
            '{' => {
                let mut field = String::new();
                let mut closed = false;
                for f in chars.by_ref() {
                    if f == '}' {
                        closed = true;
                        break;
                    }
                    field.push(f);
                }
                if !closed {
                    return Err(TemplateError::UnmatchedBrace("'{' without '}'"));
                }
                let (name_and_conversion, spec) = match field.split_once(':') {
                    Some((n, s)) => (n, s),
                    None => (field.as_str(), ""),
                };
                let (name, conversion) = match name_and_conversion.split_once('!') {
                    Some((n, c)) => (n, Some(c)),
                    None => (name_and_conversion, None),
                };
                let value = if name.is_empty() {
                    positional(0, substitutions)?
                } else if let Ok(index) = name.parse::<usize>() {
                    positional(index, substitutions)?
                } else {
                    substitutions
                        .lookup(name)
                        .ok_or_else(|| TemplateError::UnknownName(name.to_owned()))?
                };
                let bad_spec = || TemplateError::BadFormatSpec {
                    field: format!("{{{name}}}"),
                    spec: spec.to_owned(),
                };
                let value = match conversion {
                    None | Some("s") => value,
                    Some("r") => {
                        let text = match value {
                            FieldValue::Text(t) => crate::python_text::repr_of_str(t),
                            FieldValue::Integer(i) => i.to_string(),
                        };
                        let formatted = format_text(&text, spec).ok_or_else(bad_spec)?;
                        out.push_str(&finish(&formatted));
                        continue;
                    }
                    Some(_) => return Err(bad_spec()),
                };
                let formatted = match value {
                    FieldValue::Text(text) => format_text(text, spec),
                    FieldValue::Integer(number) => format_integer(number, spec),
                }
                .ok_or_else(bad_spec)?;
                out.push_str(&finish(&formatted));
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

fn positional(
    index: usize,
    substitutions: &Substitutions,
) -> Result<FieldValue<'_>, TemplateError> {
    if index == 0 {
        Ok(FieldValue::Text(&substitutions.hostname))
    } else {
        Err(TemplateError::PositionalOutOfRange(index))
    }
}

/// A parsed Python format specification.
#[derive(Debug, Default)]
struct FormatSpec {
    fill: Option<char>,
    align: Option<char>,
    sign: Option<char>,
    alternate: bool,
    zero: bool,
    width: usize,
    grouping: Option<char>,
    precision: Option<usize>,
    kind: Option<char>,
}

fn parse_spec(spec: &str) -> Option<FormatSpec> {
    let chars: Vec<char> = spec.chars().collect();
    let mut i = 0;
    let mut parsed = FormatSpec::default();
    let is_align = |c: char| "<>^=".contains(c);
    if chars.len() >= 2 && is_align(chars[1]) {
        parsed.fill = Some(chars[0]);
        parsed.align = Some(chars[1]);
        i = 2;
    } else if chars.first().copied().is_some_and(is_align) {
        parsed.align = Some(chars[0]);
        i = 1;
    }
    if let Some(&c) = chars.get(i).filter(|c| "+- ".contains(**c)) {
        parsed.sign = Some(c);
        i += 1;
    }
    if chars.get(i) == Some(&'#') {
        parsed.alternate = true;
        i += 1;
    }
    if chars.get(i) == Some(&'0') {
        parsed.zero = true;
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while chars.get(*i).is_some_and(char::is_ascii_digit) {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    let width = digits(&mut i);
    if !width.is_empty() {
        parsed.width = width.parse().ok()?;
    }
    if let Some(&c) = chars.get(i).filter(|c| ",_".contains(**c)) {
        parsed.grouping = Some(c);
        i += 1;
    }
    if chars.get(i) == Some(&'.') {
        i += 1;
        let precision = digits(&mut i);
        parsed.precision = Some(precision.parse().ok()?);
    }
    if let Some(&c) = chars.get(i) {
        parsed.kind = Some(c);
        i += 1;
    }
    (i == chars.len()).then_some(parsed)
}

fn pad(body: &str, sign_prefix: &str, spec: &FormatSpec, default_align: char) -> String {
    let length = body.chars().count() + sign_prefix.chars().count();
    let (fill, align) = match (spec.fill, spec.align) {
        (fill, Some(align)) => (fill.unwrap_or(' '), align),
        (_, None) if spec.zero => ('0', '='),
        _ => (' ', default_align),
    };
    let padding = spec.width.saturating_sub(length);
    let fills = |n: usize| fill.to_string().repeat(n);
    match align {
        '<' => format!("{sign_prefix}{body}{}", fills(padding)),
        '^' => format!(
            "{}{sign_prefix}{body}{}",
            fills(padding / 2),
            fills(padding - padding / 2)
        ),
        '=' => format!("{sign_prefix}{}{body}", fills(padding)),
        _ => format!("{}{sign_prefix}{body}", fills(padding)),
    }
}

fn format_text(text: &str, spec: &str) -> Option<String> {
    let spec = parse_spec(spec)?;
    let valid = matches!(spec.kind, None | Some('s'))
        && spec.sign.is_none()
        && !spec.alternate
        && spec.grouping.is_none()
        && spec.align != Some('=')
        && !(spec.zero && spec.align.is_none());
    if !valid {
        return None;
    }
    let body: String = match spec.precision {
        Some(p) => text.chars().take(p).collect(),
        None => text.to_owned(),
    };
    Some(pad(&body, "", &spec, '<'))
}

fn format_integer(number: i64, spec: &str) -> Option<String> {
    let spec = parse_spec(spec)?;
    if spec.precision.is_some() {
        return None;
    }
    let magnitude = number.unsigned_abs();
    let (digits, prefix) = match spec.kind {
        None | Some('d') | Some('n') => (magnitude.to_string(), ""),
        Some('x') => (format!("{magnitude:x}"), "0x"),
        Some('X') => (format!("{magnitude:X}"), "0X"),
        Some('o') => (format!("{magnitude:o}"), "0o"),
        Some('b') => (format!("{magnitude:b}"), "0b"),
        _ => return None,
    };
    let digits = match spec.grouping {
        Some(separator) if prefix.is_empty() => group_thousands(&digits, separator),
        Some(_) => return None,
        None => digits,
    };
    let sign = match (number < 0, spec.sign) {
        (true, _) => "-",
        (false, Some('+')) => "+",
        (false, Some(' ')) => " ",
        _ => "",
    };
    let sign_prefix = format!("{sign}{}", if spec.alternate { prefix } else { "" });
    Some(pad(&digits, &sign_prefix, &spec, '>'))
}

fn group_thousands(digits: &str, separator: char) -> String {
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(separator);
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs() -> Substitutions {
        Substitutions {
            hostname: "foobar".to_owned(),
            width: 8,
            height: 8,
            ethernet_ips: "/tmp/spinnaker_ips_abc.csv".to_owned(),
            job_id: 123,
        }
    }

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reference_goldens() {
        assert_eq!(
            build_command_line(&words(&["foo", "oh look a 'quote"]), &subs()),
            Ok("foo 'oh look a '\"'\"'quote'".to_owned())
        );
        assert_eq!(
            build_command_line(&words(&["<{}>"]), &subs()),
            Ok("'<foobar>'".to_owned())
        );
        assert_eq!(
            build_command_line(&words(&["foo", "{}", "bar{w}x{h}"]), &subs()),
            Ok("foo foobar bar8x8".to_owned())
        );
    }

    #[test]
    fn every_substitution() {
        let line = build_command_line(
            &words(&[
                "{}",
                "{0}",
                "{hostname}",
                "{w}",
                "{width}",
                "{h}",
                "{height}",
                "{ethernet_ips}",
                "{id}",
            ]),
            &subs(),
        );
        assert_eq!(
            line,
            Ok("foobar foobar foobar 8 8 8 8 /tmp/spinnaker_ips_abc.csv 123".to_owned())
        );
    }

    #[test]
    fn the_manuals_example_runs_through_the_shell() {
        let line = build_command_line(
            &words(&["rig-boot {} {w} {h} && python my_app.py {}"]),
            &subs(),
        );
        assert_eq!(
            line,
            Ok("rig-boot foobar 8 8 && python my_app.py foobar".to_owned())
        );
    }

    #[test]
    fn values_in_a_shell_line_are_quoted() {
        let mut s = subs();
        s.hostname = "host name;rm".to_owned();
        s.ethernet_ips = "/tmp/it's.csv".to_owned();
        let line = build_command_line(&words(&["echo {hostname} > {ethernet_ips}.out"]), &s);
        assert_eq!(
            line,
            Ok("echo 'host name;rm' > '/tmp/it'\"'\"'s.csv'.out".to_owned())
        );
    }

    #[test]
    fn braces_and_format_specs() {
        let e = |t: &str| expand(t, &subs(), str::to_owned);
        assert_eq!(
            e("{{}} {w:03d} {h:>4}|{hostname:.3}|{id:x}|{id:#06x}"),
            Ok("{} 008    8|foo|7b|0x007b".to_owned())
        );
        assert_eq!(e("{hostname:*^10}"), Ok("**foobar**".to_owned()));
        assert_eq!(e("{hostname!r}"), Ok("'foobar'".to_owned()));
        assert_eq!(e("{w:+}{w:,}"), Ok("+88".to_owned()));
        // Every `{}` is the hostname (Python would fail on the second one,
        // which breaks the manual's own example).
        assert_eq!(e("{} {0} {}"), Ok("foobar foobar foobar".to_owned()));
    }

    #[test]
    fn errors_name_the_problem() {
        let e = |t: &str| expand(t, &subs(), str::to_owned);
        assert_eq!(
            e("{nope}"),
            Err(TemplateError::UnknownName("nope".to_owned()))
        );
        assert_eq!(e("{1}"), Err(TemplateError::PositionalOutOfRange(1)));
        assert!(matches!(e("a}b"), Err(TemplateError::UnmatchedBrace(_))));
        assert!(matches!(e("a{b"), Err(TemplateError::UnmatchedBrace(_))));
        assert!(matches!(
            e("{hostname:d}"),
            Err(TemplateError::BadFormatSpec { .. })
        ));
        assert!(matches!(
            e("{w:s}"),
            Err(TemplateError::BadFormatSpec { .. })
        ));
    }
}
