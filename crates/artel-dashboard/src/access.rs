//! Who may use the dashboard, and the CSRF rule for actions.
//!
//! With `--auth` the browser asks for a user and password (HTTP Basic); with `--token`
//! the token comes once in the address (`/?token=...`), which sets an HttpOnly,
//! SameSite=Strict cookie, or in an `Authorization: Bearer` header for scripts. Every
//! POST must carry the page's CSRF token in `X-Artel-Csrf`: a custom header another
//! site cannot send without a CORS preflight, which this server never grants.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::Shared;

/// The header that carries the CSRF token on actions.
pub(crate) const CSRF_HEADER: &str = "x-artel-csrf";

const TOKEN_COOKIE: &str = "artel_token";

/// Who may use the dashboard.
#[derive(Clone, PartialEq, Eq)]
pub enum Access {
    /// Anyone who can reach it (loopback only).
    Open,
    /// HTTP Basic with this user and password.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// A bearer token (header, or cookie set from `/?token=`).
    Token(String),
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.write_str(match self {
            Access::Open => "Open",
            Access::Basic { .. } => "Basic",
            Access::Token(_) => "Token",
        })
    }
}

impl Access {
    /// `--auth USER:PASSWORD`.
    pub fn basic(pair: &str) -> Result<Self, String> {
        match pair.split_once(':') {
            Some((user, password)) if !user.is_empty() && !password.is_empty() => {
                Ok(Access::Basic { user: user.to_owned(), password: password.to_owned() })
            }
            _ => Err("--auth takes USER:PASSWORD, both non-empty".to_owned()),
        }
    }

    /// `--token TOKEN`.
    pub fn token(token: &str) -> Result<Self, String> {
        if token.len() < 16 {
            return Err("--token must be at least 16 characters (try: openssl rand -hex 16)".to_owned());
        }
        Ok(Access::Token(token.to_owned()))
    }

    /// Whether `headers` (and the query's `token`) satisfy this access.
    fn admits(&self, headers: &HeaderMap, query_token: Option<&str>) -> bool {
        match self {
            Access::Open => true,
            Access::Basic { user, password } => {
                let expected = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                header_value(headers, header::AUTHORIZATION)
                    .and_then(|v| v.strip_prefix("Basic "))
                    .is_some_and(|given| same(given.trim(), &expected))
            }
            Access::Token(token) => {
                let bearer = header_value(headers, header::AUTHORIZATION).and_then(|v| v.strip_prefix("Bearer "));
                let cookie = header_value(headers, header::COOKIE).and_then(|cookies| {
                    cookies.split(';').find_map(|c| c.trim().strip_prefix(TOKEN_COOKIE)?.strip_prefix('='))
                });
                [bearer, cookie, query_token].into_iter().flatten().any(|given| same(given, token))
            }
        }
    }
}

fn header_value(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name)?.to_str().ok()
}

/// Compares in time independent of where the inputs differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks access on every request and the CSRF token on every POST.
pub(crate) async fn guard(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let query_token = request
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("token=")))
        .map(str::to_owned);
    if !shared.access.admits(request.headers(), query_token.as_deref()) {
        let mut response = (StatusCode::UNAUTHORIZED, "sign in to use the artel dashboard").into_response();
        if matches!(shared.access, Access::Basic { .. }) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"artel\""));
        }
        return response;
    }
    if request.method() == Method::POST {
        let given = request.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if !given.is_some_and(|given| same(given, &shared.csrf)) {
            return (StatusCode::FORBIDDEN, "missing or wrong X-Artel-Csrf header: reload the page").into_response();
        }
    }
    let mut response = next.run(request).await;
    if let (Access::Token(token), Some(_)) = (&shared.access, query_token) {
        let cookie = format!("{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
        if let Ok(value) = header::HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::Access;

    fn with(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).expect("ascii"));
        headers
    }

    #[test]
    fn basic_access_admits_only_its_user_and_password() {
        let access = Access::basic("ops:s3cret").expect("valid");
        assert!(access.admits(&with(header::AUTHORIZATION, "Basic b3BzOnMzY3JldA=="), None));
        assert!(!access.admits(&with(header::AUTHORIZATION, "Basic b3BzOndyb25n"), None));
        assert!(!access.admits(&HeaderMap::new(), None));
        assert!(Access::basic("nopassword").is_err() && Access::basic(":x").is_err());
    }

    #[test]
    fn token_access_admits_a_bearer_a_cookie_or_the_query_and_nothing_else() {
        let token = "0123456789abcdef0123";
        let access = Access::token(token).expect("valid");
        assert!(access.admits(&with(header::AUTHORIZATION, &format!("Bearer {token}")), None));
        assert!(access.admits(&with(header::COOKIE, &format!("a=b; artel_token={token}")), None));
        assert!(access.admits(&HeaderMap::new(), Some(token)));
        assert!(!access.admits(&with(header::COOKIE, "artel_token=0123456789abcdef0124"), None));
        assert!(!access.admits(&HeaderMap::new(), None));
        assert!(Access::token("short").is_err(), "short tokens are refused");
        assert_eq!(format!("{access:?}"), "Token", "never printed");
    }
}
