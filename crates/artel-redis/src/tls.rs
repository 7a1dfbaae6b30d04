//! TLS to Redis (`rediss://`) with rustls: the system's trusted CAs, or the CA file given;
//! a client certificate and key for servers that ask for one (`tls-auth-clients yes`);
//! the server's name always verified. A failed handshake is explained by its cause —
//! an unknown CA, a name mismatch, an expired certificate — and the option that fixes it.

use std::path::PathBuf;

use artel_core::{BrokerError, BrokerErrorKind, BrokerResult};

/// Certificate files for `rediss://` connections (PEM). With none given, the server's
/// certificate must chain to a CA the system trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA that signed the server's certificate (`?ca=`, `ARTEL_TLS_CA_FILE`).
    pub ca: Option<PathBuf>,
    /// This client's certificate (`?cert=`, `ARTEL_TLS_CERT_FILE`), with `key`.
    pub cert: Option<PathBuf>,
    /// This client's private key (`?key=`, `ARTEL_TLS_KEY_FILE`).
    pub key: Option<PathBuf>,
}

impl TlsFiles {
    /// Whether any file is given.
    pub fn is_empty(&self) -> bool {
        self.ca.is_none() && self.cert.is_none() && self.key.is_none()
    }
}

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
    let text = format!("{error:?} {error}");
    // rustls's names for the causes (in Debug) and its words for them (in Display).
    let hints = [
        (
            ["UnknownIssuer", "unknown issuer"],
            " (TLS: the server's certificate is signed by a CA this client does not trust; give that CA's file with ?ca=PATH or ARTEL_TLS_CA_FILE)",
        ),
        (
            ["NotValidForName", "not valid for name"],
            " (TLS: the server's certificate is not issued for this host name; connect by a name the certificate lists)",
        ),
        (
            ["Expired", "certificate expired"],
            " (TLS: the server's certificate has expired, or this machine's clock is wrong; renew the certificate)",
        ),
        (
            ["NotValidYet", "not valid yet"],
            " (TLS: the server's certificate is not valid yet; check this machine's clock)",
        ),
        (
            ["CertificateRequired", "certificate required"],
            " (TLS: the server asks for a client certificate; give ?cert=PATH&key=PATH or ARTEL_TLS_CERT_FILE and ARTEL_TLS_KEY_FILE)",
        ),
        (
            ["InvalidContentType", "corrupt message"],
            " (TLS: the server did not answer in TLS; is this its TLS port (tls-port), or should the URL be redis://?)",
        ),
    ];
    hints.iter().find(|(causes, _)| causes.iter().any(|cause| text.contains(cause))).map(|(_, hint)| *hint)
}
