//! Query parameters. Booleans are read case-insensitively, as JAX-RS does:
//! SpiNNMan sends `wait=False`, `wait=True` and `wait=true`.

use super::Failure;

/// The decoded query parameters of one request.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pairs: &'a [(String, String)],
}

impl<'a> Query<'a> {
    /// Wraps decoded pairs.
    pub fn new(pairs: &'a [(String, String)]) -> Query<'a> {
        Query { pairs }
    }

    /// The first value of a parameter.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every pair, in order.
    pub fn pairs(&self) -> &'a [(String, String)] {
        self.pairs
    }

    /// A boolean flag, `false` when absent.
    pub fn flag(&self, name: &str) -> Result<bool, Failure> {
        match self.get(name) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") || v.is_empty() => Ok(false),
            Some(v) => Err(Failure::bad(format!(
                "query parameter {name} must be true or false, not {v:?}"
            ))),
        }
    }

    /// An integer in `min..=max`, `default` when absent.
    pub fn int(&self, name: &str, default: i64, min: i64, max: i64) -> Result<i64, Failure> {
        let Some(text) = self.get(name) else {
            return Ok(default);
        };
        match text.trim().parse::<i64>() {
            Ok(v) if (min..=max).contains(&v) => Ok(v),
            Ok(v) => Err(Failure::bad(format!(
                "query parameter {name} must be from {min} to {max}, not {v}"
            ))),
            Err(_) => Err(Failure::bad(format!(
                "query parameter {name} must be an integer, not {text:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn spinnman_spellings_of_booleans_are_accepted() {
        for (text, value) in [
            ("False", false),
            ("True", true),
            ("true", true),
            ("FALSE", false),
        ] {
            let p = pairs(&[("wait", text)]);
            assert_eq!(Query::new(&p).flag("wait"), Ok(value));
        }
        let p = pairs(&[("wait", "maybe")]);
        assert_eq!(Query::new(&p).flag("wait").unwrap_err().status, 400);
        assert_eq!(Query::new(&[]).flag("wait"), Ok(false));
    }

    #[test]
    fn integers_out_of_range_or_malformed_are_400() {
        let p = pairs(&[("limit", "201"), ("start", "-1"), ("x", "1e3")]);
        let q = Query::new(&p);
        assert_eq!(q.int("limit", 100, 1, 200).unwrap_err().status, 400);
        assert_eq!(q.int("start", 0, 0, i64::MAX).unwrap_err().status, 400);
        assert_eq!(q.int("x", 0, 0, 255).unwrap_err().status, 400);
        assert_eq!(q.int("y", 7, 0, 255), Ok(7));
    }
}
