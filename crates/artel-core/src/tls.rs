//! Certificate files for brokers reached over TLS (`rediss://`, `amqps://`), and what
//! to tell the user when a handshake fails. Data and words only: each broker crate
//! builds its own rustls client from these.

use std::path::PathBuf;

/// Certificate files (PEM) for a connection over TLS. With none given, the server's
/// certificate must chain to a CA the system trusts; its name is always verified.
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

/// What fixes the failed TLS handshake that `error` (the error's text, with its sources)
/// describes, if it is one: rustls names the cause, this adds the remedy.
pub fn tls_hint(error: &str) -> Option<&'static str> {
    // rustls's names for the causes (in Debug) and its words for them (in Display).
    const HINTS: [([&str; 2], &str); 6] = [
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
            " (TLS: the server did not answer in TLS; is this its TLS port, or should the URL be the plain scheme?)",
        ),
    ];
    HINTS.iter().find(|(causes, _)| causes.iter().any(|cause| error.contains(cause))).map(|(_, hint)| *hint)
}
