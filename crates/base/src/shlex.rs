//! Python's `shlex` in POSIX mode, as Ansible uses it: `split` for a command's free-form
//! text (`shlex.split`, no comments), `split_with_comments` for an INI inventory's host
//! lines (`shlex.split(line, comments=True)`), and `quote`.

/// Why a text does not split, in Python's words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShlexError {
    #[error("No closing quotation")]
    NoClosingQuotation,
    #[error("No escaped character")]
    NoEscapedCharacter,
}

/// Python's `shlex.split(s)`.
pub fn split(s: &str) -> Result<Vec<String>, ShlexError> {
    split_impl(s, false)
}

/// Python's `shlex.split(s, comments=True)`: `#` outside quotes ends the line.
pub fn split_with_comments(s: &str) -> Result<Vec<String>, ShlexError> {
    split_impl(s, true)
}

/// Python's `shlex.quote`.
pub fn quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c)) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

/// shlex's whitespace: exactly these four, so other spaces (NBSP, form feed) stay in a word.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn split_impl(s: &str, comments: bool) -> Result<Vec<String>, ShlexError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    // A token has started (so `''` gives an empty word).
    let mut in_token = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if is_space(c) => {
                if in_token {
                    out.push(std::mem::take(&mut cur));
                    in_token = false;
                }
            }
            '#' if comments => {
                // The rest of the line is a comment; it also ends the word it interrupts.
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
                if in_token {
                    out.push(std::mem::take(&mut cur));
                    in_token = false;
                }
            }
            '\\' => {
                in_token = true;
                cur.push(chars.next().ok_or(ShlexError::NoEscapedCharacter)?);
            }
            '\'' => {
                in_token = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(n) => cur.push(n),
                        None => return Err(ShlexError::NoClosingQuotation),
                    }
                }
            }
            '"' => {
                in_token = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        // Inside double quotes a backslash escapes only `"` and `\`.
                        Some('\\') => match chars.next() {
                            Some(n @ ('"' | '\\')) => cur.push(n),
                            Some(n) => {
                                cur.push('\\');
                                cur.push(n);
                            }
                            None => return Err(ShlexError::NoClosingQuotation),
                        },
                        Some(n) => cur.push(n),
                        None => return Err(ShlexError::NoClosingQuotation),
                    }
                }
            }
            c => {
                in_token = true;
                cur.push(c);
            }
        }
    }
    if in_token {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    // Expected values are what Python 3.11's shlex gives.
    #[test]
    fn split_as_python() {
        assert_eq!(split("echo 'a b' \"c \\\"d\\\" \\x\" e\\ f").unwrap(), words(&["echo", "a b", "c \"d\" \\x", "e f"]));
        assert_eq!(split("a '' b").unwrap(), words(&["a", "", "b"]));
        assert_eq!(split("  ").unwrap(), words(&[]));
        assert_eq!(split("a#b # c").unwrap(), words(&["a#b", "#", "c"]));
        assert_eq!(split("a\u{a0}b").unwrap(), words(&["a\u{a0}b"]));
        assert_eq!(split("a 'b").unwrap_err(), ShlexError::NoClosingQuotation);
        assert_eq!(split("a \"b\\").unwrap_err(), ShlexError::NoClosingQuotation);
        assert_eq!(split("a b\\").unwrap_err().to_string(), "No escaped character");
    }

    #[test]
    fn split_with_comments_as_python() {
        assert_eq!(split_with_comments(r#"h a="b c" d='e' f=g\ h i="x\"y\z""#).unwrap(), words(&["h", "a=b c", "d=e", "f=g h", "i=x\"y\\z"]));
        assert_eq!(split_with_comments("h # c").unwrap(), words(&["h"]));
        assert_eq!(split_with_comments("h a=\"\"").unwrap(), words(&["h", "a="]));
        assert_eq!(split_with_comments("h a#b c\nd").unwrap(), words(&["h", "a", "d"]));
        assert_eq!(split_with_comments("h 'a#b'").unwrap(), words(&["h", "a#b"]));
    }

    #[test]
    fn quote_as_python() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a_b-c.d/e@f%g+h=i:j,k"), "a_b-c.d/e@f%g+h=i:j,k");
        assert_eq!(quote("it's"), "'it'\"'\"'s'");
    }
}
