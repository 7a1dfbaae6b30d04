//! Which workers a remote-control request is for, as kombu's pidbox decides it: the
//! nodes in `destination` when it names any; else, with a `pattern` and a `matcher`,
//! the nodes the pattern matches (`glob`: Python's `fnmatch`; `pcre`: Python's
//! `re.match`, anchored at the start only); else every node.
//!
//! A pattern that cannot be read, or a matcher kombu does not know, addresses nobody
//! (kombu raises and answers nothing).

use regex::Regex;

/// A request's addressing fields.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct Address {
    #[serde(default)]
    destination: Option<Vec<String>>,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    matcher: Option<String>,
}

impl Address {
    /// Whether node `nodename` is to answer.
    pub(super) fn includes(&self, nodename: &str) -> bool {
        if let Some(nodes) = self.destination.as_ref().filter(|nodes| !nodes.is_empty()) {
            return nodes.iter().any(|node| node == nodename);
        }
        let (Some(pattern), Some(matcher)) = (self.pattern.as_deref(), self.matcher.as_deref()) else {
            return true;
        };
        let regex = match matcher {
            "glob" => Regex::new(&glob_to_regex(pattern)),
            "pcre" => Regex::new(&format!(r"\A(?:{pattern})")),
            other => {
                tracing::warn!(matcher = other, "ignoring a remote-control request with an unknown matcher");
                return false;
            }
        };
        match regex {
            Ok(regex) => regex.is_match(nodename),
            Err(e) => {
                tracing::warn!(pattern, error = %e, "ignoring a remote-control request whose pattern cannot be read");
                false
            }
        }
    }
}

/// A regular expression matching what Python's `fnmatch` matches with `pattern`: `*`
/// any run of characters, `?` any one, `[...]` a set (`[!...]` its complement), the rest
/// literally, the whole name.
fn glob_to_regex(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::from(r"\A(?s:");
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            '[' => match set_end(&chars, i) {
                Some(end) => {
                    let mut set: String = chars[i + 1..end].iter().collect();
                    let negated = set.starts_with('!');
                    if negated {
                        set.remove(0);
                    }
                    let escaped = set.replace('\\', r"\\").replace('[', r"\[").replace('&', r"\&").replace('~', r"\~");
                    out.push('[');
                    if negated {
                        out.push('^');
                    } else if escaped.starts_with('^') {
                        out.push('\\');
                    }
                    out.push_str(&escaped);
                    out.push(']');
                    i = end;
                }
                None => out.push_str(r"\["),
            },
            c => out.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    out.push_str(r")\z");
    out
}

/// Where the set opened at `open` closes: a `]` right after `[` or `[!` is a member.
fn set_end(chars: &[char], open: usize) -> Option<usize> {
    let mut j = open + 1;
    if chars.get(j) == Some(&'!') {
        j += 1;
    }
    if chars.get(j) == Some(&']') {
        j += 1;
    }
    (j..chars.len()).find(|&k| chars[k] == ']')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(destination: Option<&[&str]>, pattern: Option<&str>, matcher: Option<&str>) -> Address {
        Address {
            destination: destination.map(|nodes| nodes.iter().map(|n| (*n).to_owned()).collect()),
            pattern: pattern.map(str::to_owned),
            matcher: matcher.map(str::to_owned),
        }
    }

    #[test]
    fn a_destination_names_the_nodes_and_an_empty_one_names_all() {
        assert!(address(Some(&["a@h", "b@h"]), None, None).includes("b@h"));
        assert!(!address(Some(&["a@h"]), None, None).includes("b@h"));
        assert!(!address(Some(&["a@h"]), Some("*"), Some("glob")).includes("b@h"), "a destination wins");
        assert!(address(Some(&[]), None, None).includes("b@h"));
        assert!(address(None, None, None).includes("b@h"));
        assert!(address(None, Some("nobody"), None).includes("b@h"), "a pattern without a matcher is ignored");
    }

    #[test]
    fn glob_patterns_match_as_pythons_fnmatch() {
        let glob = |pattern: &str, node: &str| address(None, Some(pattern), Some("glob")).includes(node);
        assert!(glob("celery@*", "celery@web1"));
        assert!(!glob("celery@*", "worker@web1"));
        assert!(glob("w?@h", "w1@h") && !glob("w?@h", "w12@h"));
        assert!(glob("w[12]@h", "w2@h") && !glob("w[12]@h", "w3@h"));
        assert!(glob("w[!12]@h", "w3@h") && !glob("w[!12]@h", "w1@h"));
        assert!(glob("w[]]@h", "w]@h"), "a ] first in a set is a member");
        assert!(glob("w[^1]@h", "w^@h") && glob("w[^1]@h", "w1@h"), "^ is a member, not a negation");
        assert!(glob("a.b+(c)@h", "a.b+(c)@h") && !glob("a.b@h", "axb@h"), "the rest is literal");
        assert!(glob("w[@h", "w[@h"), "an unclosed [ is literal");
        assert!(!glob("celery", "celery@web1"), "the whole name");
    }

    #[test]
    fn pcre_patterns_match_at_the_start_as_pythons_re_match() {
        let pcre = |pattern: &str, node: &str| address(None, Some(pattern), Some("pcre")).includes(node);
        assert!(pcre(r"celery@web\d+", "celery@web12"));
        assert!(pcre("celery", "celery@web1"), "anchored at the start only");
        assert!(!pcre("web", "celery@web1"));
        assert!(!pcre("(", "celery@web1"), "an unreadable pattern addresses nobody");
        assert!(!address(None, Some("*"), Some("sql")).includes("celery@web1"), "an unknown matcher neither");
    }
}
