//! Bearer-token authentication: with tokens configured, every RuQi route needs
//! `Authorization: Bearer <token>` naming one of them (compared in constant time).

use axum::http::{HeaderMap, header};

use super::ApiError;

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Passes when auth is off or the request carries a configured token.
pub fn check(tokens: &[String], headers: &HeaderMap) -> Result<(), ApiError> {
    if tokens.is_empty() {
        return Ok(());
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    match given {
        None => Err(ApiError::Unauthorized("missing bearer token".into())),
        Some(t) if tokens.iter().any(|k| constant_time_eq(k.as_bytes(), t.as_bytes())) => Ok(()),
        Some(_) => Err(ApiError::Unauthorized("invalid bearer token".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let mut h = HeaderMap::new();
        assert!(check(&[], &h).is_ok());
        let toks = vec!["s3cret".to_owned(), "other".to_owned()];
        assert!(check(&toks, &h).is_err());
        h.insert(header::AUTHORIZATION, "Bearer nope".parse().unwrap());
        assert!(check(&toks, &h).is_err());
        h.insert(header::AUTHORIZATION, "Bearer other".parse().unwrap());
        assert!(check(&toks, &h).is_ok());
        h.insert(header::AUTHORIZATION, "Basic other".parse().unwrap());
        assert!(check(&toks, &h).is_err());
    }
}
