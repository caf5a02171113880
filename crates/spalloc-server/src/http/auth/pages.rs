//! The two HTML pages: the log-in form and the page a browser lands on
//! after logging in.

use super::{CSRF_HEADER, LOGIN_ACTION, LOGOUT_ACTION, TOKENS_PATH};

/// The hidden CSRF input exactly as Spring's `<sec:csrfInput/>` writes it.
/// SpiNNMan finds the token with the single-line greedy regex
/// `<input type="hidden" name="_csrf" value="(.*)" />`, so this must stay
/// alone on its line, with this attribute order and spacing.
pub fn csrf_input(token: &str) -> String {
    format!(
        r#"<input type="hidden" name="_csrf" value="{}" />"#,
        escape(token)
    )
}

/// The log-in form, carrying the session's CSRF token.
pub fn login_form(csrf: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>spalloc: log in</title>
</head>
<body>
<h1>Log in to spalloc</h1>
<form method="post" action="{LOGIN_ACTION}">
<p><label>User name <input type="text" name="username" autocomplete="username" autofocus></label></p>
<p><label>Password <input type="password" name="password" autocomplete="current-password"></label></p>
{input}
<p><button type="submit" name="submit" value="submit">Log in</button></p>
</form>
</body>
</html>
"#,
        input = csrf_input(csrf)
    )
}

/// The logged-in user's page: who they are, where the API is, how to make
/// a token, and a log-out button.
pub fn home(user: &str, role: &str, csrf: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>spalloc</title>
</head>
<body>
<h1>spalloc</h1>
<p>Logged in as <b>{user}</b> (role {role}).</p>
<ul>
<li><a href="/spalloc/srv/spalloc/">The API</a></li>
<li><a href="{TOKENS_PATH}">Your API tokens</a>; make one with
<code>curl -u {user} -X POST -H 'Content-Type: application/json' -d '{{"name":"laptop"}}' https://HOST{TOKENS_PATH}</code>
or <code>spalloc-server user token {user}</code>. This session's {CSRF_HEADER} is <code>{csrf}</code>.</li>
</ul>
<form method="post" action="{LOGOUT_ACTION}">
{input}
<p><button type="submit">Log out</button></p>
</form>
</body>
</html>
"#,
        user = escape(user),
        role = escape(role),
        csrf = escape(csrf),
        input = csrf_input(csrf),
    )
}

/// Escapes text for HTML. User names are already restricted to characters
/// that need none; this guards against a hand-edited database.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csrf_input_is_alone_on_its_line_as_spring_writes_it() {
        let page = login_form("0123abcd");
        let line = page
            .lines()
            .find(|l| l.contains("_csrf"))
            .expect("has the input");
        assert_eq!(
            line,
            r#"<input type="hidden" name="_csrf" value="0123abcd" />"#
        );
    }

    #[test]
    fn html_in_a_name_is_escaped() {
        let page = home("<script>", "user", "t");
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("<script>"));
    }
}
