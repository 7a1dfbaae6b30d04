//! Broker URLs as they may be shown: in banners, logs, errors and replies to monitors.
//!
//! Invariant: no password of a URL given to artel is ever printed; every place that
//! shows a URL shows [`redact_url`]'s output.

/// `url` with the password of every `scheme://user:password@host` in it (the URL itself
/// and URLs nested in its parameters, such as `?results=redis://:pw@host`) replaced by
/// `***`.
pub fn redact_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(start) = rest.find("://") {
        let (head, tail) = rest.split_at(start + 3);
        out.push_str(head);
        let authority_end = tail.find(['/', '?', '#']).unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..=colon]);
                        out.push_str("***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_hidden_wherever_they_stand() {
        let cases = [
            ("redis://:s3cret@host:6379/0", "redis://:***@host:6379/0"),
            ("redis://worker:s3cret@host/1", "redis://worker:***@host/1"),
            ("amqp://guest:guest@127.0.0.1:5672/%2f", "amqp://guest:***@127.0.0.1:5672/%2f"),
            (
                "amqp://u:p@h//?results=redis://:pw@r:6379/0&lease_ms=5",
                "amqp://u:***@h//?results=redis://:***@r:6379/0&lease_ms=5",
            ),
            ("celery+redis://:p@ss:w@rd@host/0", "celery+redis://:***@host/0"),
            ("redis://user@host/0", "redis://user@host/0"),
            ("sqlite://artel.db?poll_ms=10", "sqlite://artel.db?poll_ms=10"),
            ("memory://", "memory://"),
            ("not a url", "not a url"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }
}
