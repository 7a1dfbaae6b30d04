//! TLS to Redis (`rediss://`) with rustls: the system's trusted CAs, or the CA file given;
//! a client certificate and key for servers that ask for one (`tls-auth-clients yes`);
//! the server's name always verified. A failed handshake is explained by its cause —
//! an unknown CA, a name mismatch, an expired certificate — and the option that fixes it.

use std::path::PathBuf;

use artel_core::{BrokerError, BrokerErrorKind, BrokerResult, TlsFiles};

/// A client for `url`; `rediss://` URLs use `files`.
pub(crate) fn client(url: &str, shown: &str, files: &TlsFiles) -> BrokerResult<redis::Client> {
    let opening = |e: redis::RedisError| crate::toolkit::redis_error(&format!("connecting to Redis at {shown}"), e);
    if files.is_empty() {
        return redis::Client::open(url).map_err(opening);
    }
    if !url.starts_with("rediss://") {
        return Err(BrokerError::new(
            BrokerErrorKind::Other,
            format!(
                "certificate files were given for {shown}, which is not TLS: use rediss:// (or drop ?ca=, ?cert=, ?key= and the ARTEL_TLS_* variables)"
            ),
        ));
    }
    let read = |path: &PathBuf, what: &str| {
        std::fs::read(path).map_err(|e| {
            BrokerError::new(BrokerErrorKind::Other, format!("cannot read the {what} {}: {e}", path.display()))
        })
    };
    let client_tls = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: read(cert, "client certificate (?cert=)")?,
            client_key: read(key, "client key (?key=)")?,
        }),
        (None, None) => None,
        _ => {
            return Err(BrokerError::new(
                BrokerErrorKind::Other,
                "a client certificate needs its key and the other way round: give both ?cert= and ?key=",
            ));
        }
    };
    let root_cert = files.ca.as_ref().map(|ca| read(ca, "CA file (?ca=)")).transpose()?;
    redis::Client::build_with_tls(url, redis::TlsCertificates { client_tls, root_cert }).map_err(opening)
}

/// What to do about a failed TLS handshake, if `error` is one.
pub(crate) fn hint(error: &redis::RedisError) -> Option<&'static str> {
    artel_core::tls_hint(&format!("{error:?} {error}"))
}
