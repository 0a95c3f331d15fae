//! RuQi's request/response envelope: parameter parsing (query string as Python 2
//! `parse_qs` reads it, plus a JSON-object body for POST; body wins), parameter checking
//! against each route's signature, and the answer: HTTP 200 with `stat`, the reason in a
//! one-line `x-reason` header.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};

use super::pyjson;

/// The `ruqi` header's value on answers a handler produced.
pub const RUQI_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why a request failed; each maps to one of RuQi's `stat` codes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// `ERR_BAD_PARAMS`: unknown, missing, repeated or mistyped parameter; unparseable body.
    #[error("{0}")]
    BadParams(String),
    /// `ERR`: the request was understood and refused (validation, unknown id, …).
    #[error("{0}")]
    Refused(String),
    /// `ERR_SERVER_EXCEPTION`: the server could not do it (store unreachable, …).
    #[error("{0}")]
    Server(String),
    /// HTTP 401 `ERR_UNAUTHORIZED`: no valid bearer token.
    #[error("{0}")]
    Unauthorized(String),
    /// HTTP 403 `ERR_FORBIDDEN`: a read-only token on a route that changes something.
    #[error("{0}")]
    Forbidden(String),
}

impl ApiError {
    /// The `stat` code.
    pub fn stat(&self) -> &'static str {
        match self {
            Self::BadParams(_) => "ERR_BAD_PARAMS",
            Self::Refused(_) => "ERR",
            Self::Server(_) => "ERR_SERVER_EXCEPTION",
            Self::Unauthorized(_) => "ERR_UNAUTHORIZED",
            Self::Forbidden(_) => "ERR_FORBIDDEN",
        }
    }

    /// RuQi's reason for an unknown or missing parameter.
    pub fn param_check_failed() -> Self {
        Self::BadParams("Param check failed".into())
    }

    /// RuQi's reason for an unknown job id.
    pub fn no_job(id: &str) -> Self {
        Self::Refused(format!("u'No job by the id of {id} was found'"))
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::AlreadyExists(id) => {
                Self::Refused(format!("Conflicting job id: {id} already exists"))
            }
            crate::store::StoreError::NotFound(id) => Self::no_job(&id),
            e @ crate::store::StoreError::Unadopted { .. } => Self::Refused(e.to_string()),
            other => {
                tracing::error!(error = %other, "store error answering a request");
                Self::Server(other.to_string())
            }
        }
    }
}

/// The parameters of one request, after merging query and body.
#[derive(Debug, Default, Clone)]
pub struct Params(BTreeMap<String, Value>);

/// Percent-decodes like Python's `unquote_plus`: `+` is a space; invalid UTF-8 is replaced.
fn unquote_plus(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3).unwrap_or_default()).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Params {
    /// Parses the query string (pairs split on `&` and `;`, blank values dropped, a repeated
    /// key refused) and, for POST, a body that must be empty or a JSON object.
    pub fn parse(query: Option<&str>, post_body: Option<&[u8]>) -> Result<Self, ApiError> {
        let mut map = BTreeMap::new();
        for pair in query.unwrap_or_default().split(['&', ';']) {
            let Some((k, v)) = pair.split_once('=') else { continue };
            let (k, v) = (unquote_plus(k), unquote_plus(v));
            if v.is_empty() {
                continue;
            }
            if map.insert(k.clone(), Value::String(v)).is_some() {
                return Err(ApiError::BadParams(format!("Param check failed: parameter {k} is repeated")));
            }
        }
        if let Some(body) = post_body.filter(|b| !b.is_empty()) {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(obj)) => map.extend(obj),
                _ => return Err(ApiError::BadParams("Param check exception".into())),
            }
        }
        Ok(Self(map))
    }

    /// Parameters given as a JSON object (a stored definition).
    pub fn from_object(map: serde_json::Map<String, Value>) -> Self {
        Self(map.into_iter().collect())
    }

    /// The parameters as a JSON object.
    pub fn to_value(&self) -> Value {
        Value::Object(self.0.clone().into_iter().collect())
    }

    /// Refuses parameters outside `allowed`, and missing `required` ones.
    pub fn check(&self, required: &[&str], optional: &[&str]) -> Result<(), ApiError> {
        let known = |k: &str| required.contains(&k) || optional.contains(&k);
        if self.0.keys().any(|k| !known(k)) || required.iter().any(|r| !self.0.contains_key(*r)) {
            return Err(ApiError::param_check_failed());
        }
        Ok(())
    }

    /// The raw value, if given.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// A string parameter (`None` when absent or JSON null).
    pub fn string(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::BadParams(format!("Param check failed: {name} must be a string"))),
        }
    }

    /// A required string parameter.
    pub fn required_string(&self, name: &str) -> Result<String, ApiError> {
        self.string(name)?.ok_or_else(|| ApiError::BadParams(format!("Param check failed: {name} must be a string")))
    }

    /// A non-negative integer parameter, given as a JSON integer or decimal digits.
    pub fn uint(&self, name: &str) -> Result<Option<u64>, ApiError> {
        let bad = || ApiError::BadParams(format!("Param check failed: {name} must be a non-negative integer"));
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(bad),
            Some(Value::String(s)) => s.trim().parse::<u64>().map(Some).map_err(|_| bad()),
            Some(_) => Err(bad()),
        }
    }

    /// A boolean parameter: JSON bool, 0/1, or `true`/`false`/`1`/`0` text.
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, ApiError> {
        let bad = || ApiError::BadParams(format!("Param check failed: {name} must be true/false or 1/0"));
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(0) => Ok(Some(false)),
                Some(1) => Ok(Some(true)),
                _ => Err(bad()),
            },
            Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "1" | "true" => Ok(Some(true)),
                "0" | "false" => Ok(Some(false)),
                _ => Err(bad()),
            },
            Some(_) => Err(bad()),
        }
    }
}

/// What a handler returns on success.
pub enum Reply {
    /// `{"stat": "OK"}`
    Ok,
    /// `{"stat": "OK", "data": …}`
    Data(Value),
    /// A plain-text answer (`display=text`).
    Text(String),
    /// A body produced while it is sent (an unpaged listing), with its content type.
    Stream(Body, &'static str),
}

fn reqid() -> String {
    format!("{:016X}", uuid::Uuid::new_v4().as_u128() as u64)
}

/// The reason as one line of visible ASCII, escaped the way Python's `repr` shows text: line
/// breaks and other control characters as `\n`, `\x1b`…, other characters as `\uXXXX`.
fn one_line(reason: &str) -> HeaderValue {
    let mut flat = String::with_capacity(reason.len());
    for c in reason.chars() {
        match c {
            '\n' => flat.push_str("\\n"),
            '\r' => flat.push_str("\\r"),
            '\t' => flat.push_str("\\t"),
            ' '..='~' => flat.push(c),
            c if (c as u32) < 0x100 => flat.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => flat.push_str(&format!("\\u{:04x}", c as u32)),
            c => flat.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    HeaderValue::from_str(&flat).unwrap_or(HeaderValue::from_static("error"))
}

/// Builds the HTTP answer for a handler result.
pub fn respond(result: Result<Reply, ApiError>, started: Instant) -> Response<Body> {
    let (status, body, content_type, reason, handler_ran) = match result {
        Ok(Reply::Ok) => {
            (StatusCode::OK, Body::from(pyjson::to_string(&json!({"stat": "OK"}))), "application/json", None, true)
        }
        Ok(Reply::Data(data)) => {
            let text = pyjson::to_string(&json!({"stat": "OK", "data": data}));
            (StatusCode::OK, Body::from(text), "application/json", None, true)
        }
        Ok(Reply::Text(text)) => (StatusCode::OK, Body::from(text), "text/plain; charset=utf-8", None, true),
        Ok(Reply::Stream(body, content_type)) => (StatusCode::OK, body, content_type, None, true),
        Err(e) => {
            let status = match e {
                ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
                ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
                _ => StatusCode::OK,
            };
            let ran = matches!(e, ApiError::Refused(_));
            let body = Body::from(pyjson::to_string(&json!({"stat": e.stat()})));
            (status, body, "application/json", Some(e.to_string()), ran)
        }
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    if handler_ran {
        h.insert("ruqi", HeaderValue::from_static(RUQI_VERSION));
    }
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert("x-reqid", HeaderValue::from_str(&reqid()).expect("hex"));
    h.insert("x-cost", HeaderValue::from_str(&format!("{:.6}", started.elapsed().as_secs_f64())).expect("digits"));
    if let Some(r) = reason {
        h.insert("x-reason", one_line(&r));
    }
    if status == StatusCode::UNAUTHORIZED {
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

/// HTTP 400 with an empty body and `x-reason: API Not Found`, as RuQi answers an unknown path.
pub fn not_found() -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::BAD_REQUEST;
    resp.headers_mut().insert("x-reason", HeaderValue::from_static("API Not Found"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing_like_parse_qs() {
        let p = Params::parse(Some("job_id=a+b&job_name=%E5%A6%82%E6%9C%9F&blank=&x;y=1&bad=%zz"), None).unwrap();
        assert_eq!(p.get("job_id"), Some(&json!("a b")));
        assert_eq!(p.get("job_name"), Some(&json!("如期")));
        assert_eq!(p.get("blank"), None);
        assert_eq!(p.get("y"), Some(&json!("1")));
        assert_eq!(p.get("bad"), Some(&json!("%zz")));
        assert!(matches!(Params::parse(Some("a=1&a=2"), None), Err(ApiError::BadParams(_))));
    }

    #[test]
    fn body_wins_and_must_be_an_object() {
        let p = Params::parse(Some("job_id=q&page_size=3"), Some(br#"{"job_id": "b", "n": 1}"#)).unwrap();
        assert_eq!(p.get("job_id"), Some(&json!("b")));
        assert_eq!(p.get("page_size"), Some(&json!("3")));
        assert_eq!(p.get("n"), Some(&json!(1)));
        for body in [&b"[1]"[..], b"null", b"a=1", b"{", b"\"x\""] {
            let e = Params::parse(None, Some(body)).unwrap_err();
            assert_eq!(e, ApiError::BadParams("Param check exception".into()), "{body:?}");
        }
        assert!(Params::parse(None, Some(b"")).is_ok());
    }

    #[test]
    fn checking_against_a_signature() {
        let p = Params::parse(Some("job_id=a"), None).unwrap();
        assert!(p.check(&["job_id"], &[]).is_ok());
        assert_eq!(p.check(&["job_id", "x"], &[]).unwrap_err(), ApiError::param_check_failed());
        assert_eq!(p.check(&[], &[]).unwrap_err(), ApiError::param_check_failed());
    }

    #[test]
    fn typed_values() {
        let p = Params::parse(Some("a=12&b=x&c=-1&t=true&f=0"), Some(br#"{"j": 5, "s": 1.5, "n": null, "bb": false}"#))
            .unwrap();
        assert_eq!(p.uint("a").unwrap(), Some(12));
        assert_eq!(p.uint("j").unwrap(), Some(5));
        assert!(p.uint("b").is_err() && p.uint("c").is_err() && p.uint("s").is_err());
        assert_eq!(p.uint("n").unwrap(), None);
        assert_eq!(p.boolean("t").unwrap(), Some(true));
        assert_eq!(p.boolean("f").unwrap(), Some(false));
        assert_eq!(p.boolean("bb").unwrap(), Some(false));
        assert!(p.boolean("b").is_err());
        assert!(p.string("j").is_err());
    }

    #[test]
    fn reasons_are_one_line() {
        assert_eq!(one_line("a\nb\r\nc"), HeaderValue::from_static("a\\nb\\r\\nc"));
        assert_eq!(
            one_line("u'No job by the id of 如期 was found'"),
            "u'No job by the id of \\u5982\\u671f was found'"
        );
        assert_eq!(one_line("\u{1b}[31m😀"), "\\x1b[31m\\U0001f600");
    }
}
