//! Bearer-token authentication: with tokens configured, every RuQi route needs an
//! `Authorization` header with the `Bearer` scheme (any letter case, RFC 7235) naming one of
//! them. Tokens are compared in constant time (`subtle`), and every configured token is
//! compared, so the answer's timing tells nothing about which one nearly matched. Read-only
//! tokens may call only the routes that change nothing (show, list, history, status).

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;

use super::ApiError;

/// The accepted tokens; both lists empty = authentication off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    /// The names tokens were given in a tokens file (`TOKEN [read-only] name=NAME`), by token:
    /// who the audit trail says made a change.
    pub names: Vec<(String, String)>,
    /// Tokens that may call every route.
    pub full: Vec<String>,
    /// Tokens that may call only the read-only routes.
    pub read_only: Vec<String>,
}

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Every route.
    Full,
    /// Only routes that change nothing.
    ReadOnly,
}

impl Tokens {
    /// Who the caller of a request with `headers` is, for the audit trail: its token's name, or
    /// `token-` and the first 8 hex digits of the token's SHA-256 for a token with no name
    /// (the token itself is never written); `anonymous` when the node has no tokens.
    pub fn caller(&self, headers: &HeaderMap) -> String {
        if !self.enabled() {
            return "anonymous".into();
        }
        let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default().trim();
        let Some((_, token)) = value.split_once(char::is_whitespace) else { return "anonymous".into() };
        let token = token.trim();
        if let Some((_, name)) = self.names.iter().find(|(t, _)| bool::from(t.as_bytes().ct_eq(token.as_bytes()))) {
            return name.clone();
        }
        use sha2::Digest;
        let digest = sha2::Sha256::digest(token.as_bytes());
        format!("token-{}", digest.iter().take(4).map(|b| format!("{b:02x}")).collect::<String>())
    }

    /// Whether authentication is on.
    pub fn enabled(&self) -> bool {
        !(self.full.is_empty() && self.read_only.is_empty())
    }
}

/// Whether `given` is one of `tokens`, comparing against every one of them in constant time.
fn any_matches(tokens: &[String], given: &[u8]) -> bool {
    tokens.iter().fold(subtle::Choice::from(0), |found, t| found | t.as_bytes().ct_eq(given)).into()
}

/// The access a request has: `Full` when auth is off, else what its bearer token grants.
pub fn check(tokens: &Tokens, headers: &HeaderMap) -> Result<Access, ApiError> {
    if !tokens.enabled() {
        return Ok(Access::Full);
    }
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default().trim();
    let given = value
        .split_once(char::is_whitespace)
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(given) = given.filter(|t| !t.is_empty()) else {
        return Err(ApiError::Unauthorized("missing bearer token".into()));
    };
    let (full, read) = (any_matches(&tokens.full, given.as_bytes()), any_matches(&tokens.read_only, given.as_bytes()));
    match (full, read) {
        (true, _) => Ok(Access::Full),
        (false, true) => Ok(Access::ReadOnly),
        (false, false) => Err(ApiError::Unauthorized("invalid bearer token".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn tokens_schemes_and_access() {
        assert_eq!(check(&Tokens::default(), &HeaderMap::new()), Ok(Access::Full));
        let toks = Tokens {
            full: vec!["s3cret".into(), "other".into()],
            read_only: vec!["viewer".into()],
            names: vec![("viewer".into(), "dash".into())],
        };
        assert_eq!(toks.caller(&with("Bearer viewer")), "dash");
        assert!(toks.caller(&with("Bearer other")).starts_with("token-"));
        assert_eq!(Tokens::default().caller(&HeaderMap::new()), "anonymous");
        assert!(matches!(check(&toks, &HeaderMap::new()), Err(ApiError::Unauthorized(_))));
        for ok in ["Bearer other", "bearer other", "BEARER other", "BeArEr   s3cret ", "Bearer\tother"] {
            assert_eq!(check(&toks, &with(ok)), Ok(Access::Full), "{ok:?}");
        }
        assert_eq!(check(&toks, &with("Bearer viewer")), Ok(Access::ReadOnly));
        for bad in
            ["Bearer nope", "Basic other", "other", "Bearer", "Bearer ", "Bearerother", "Bearer othe", "Bearer s3cret2"]
        {
            assert!(matches!(check(&toks, &with(bad)), Err(ApiError::Unauthorized(_))), "{bad:?}");
        }
    }
}
