//! http-post: RuQi's `run_http` (reference §3.2). `URL#JSON` is POSTed with
//! `Content-Type: application/json` (`{}` when there is no `#…`), redirects are followed, and
//! the run succeeds when the answer is HTTP 2xx with a JSON body; the output is that body. The
//! body is sent with its `Content-Length` (never chunked), as RuQi 1.x (Python `requests`) does,
//! with the run's id as `Idempotency-Key` (stable for a job's fire time: a receiver drops a replay).
//!
//! Params (a run started by hand with `job_run?params=`) must be a JSON object: its top-level
//! keys are merged into the cmd's JSON object, a key of the params replacing the cmd's (a cmd
//! without `#…` sends the params alone). Params that are not a JSON object fail the run, and
//! nothing is sent.
//!
//! The request goes through the standard `wasi:http/outgoing-handler`: the host decides which
//! hosts this plugin may reach (its `hosts` grant) and refuses the others.

use ruqi_plugin_sdk::{Executor, PluginInfo, RunOutcome, RunRequest};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme};

/// RuQi's urllib2 timeout, for connecting, the first byte and between bytes.
const TIMEOUT_NS: u64 = 90_000_000_000;
/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 10;
/// Response bytes read at most (the host truncates history output far below this).
const MAX_BODY: usize = 1 << 20;

/// A cmd split the way RuQi splits it: the URL and the JSON object to send.
#[derive(Debug, PartialEq)]
struct Post {
    url: url::Url,
    body: String,
}

fn parse(cmd: &str) -> Result<Post, String> {
    let (raw_url, json) = match cmd.split_once('#') {
        Some((u, j)) => (u, Some(j)),
        None => (cmd, None),
    };
    let url = url::Url::parse(raw_url).map_err(|e| format!("invalid url {raw_url:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("invalid url {raw_url:?}: must be http:// or https:// with a host"));
    }
    let body = match json {
        None => "{}".to_owned(),
        // Everything after the first `#`; if that is not JSON, RuQi's reading: the part up to
        // the next `#` (later parts ignored).
        Some(j) => [j, j.split('#').next().unwrap_or_default()]
            .into_iter()
            .find(|candidate| serde_json::from_str::<serde_json::Value>(candidate).is_ok_and(|v| v.is_object()))
            .ok_or_else(|| format!("the part after # must be a JSON object, not {j:?}"))?
            .to_owned(),
    };
    Ok(Post { url, body })
}

/// `body` (a JSON object) with the top-level keys of `params` merged in, the params' winning;
/// `body` unchanged without params.
fn merge(body: String, params: Option<&str>) -> Result<String, String> {
    let Some(params) = params else {
        return Ok(body);
    };
    let params = match serde_json::from_str::<serde_json::Value>(params) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(_) => return Err(format!("params must be a JSON object, not {params:?}")),
        Err(e) => return Err(format!("params must be a JSON object: {e}")),
    };
    let mut merged: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&body).map_err(|e| format!("the cmd's body is not a JSON object: {e}"))?;
    merged.extend(params);
    Ok(serde_json::Value::Object(merged).to_string())
}

/// One answer: status and body.
struct Answer {
    status: u16,
    location: Option<String>,
    body: Vec<u8>,
}

fn describe(e: &ErrorCode) -> String {
    match e {
        ErrorCode::ConnectionRefused => "connection refused".into(),
        ErrorCode::ConnectionTimeout => "connection timed out".into(),
        ErrorCode::ConnectionReadTimeout => "timed out waiting for the answer".into(),
        ErrorCode::DnsError(d) => format!("dns error: {}", d.rcode.clone().unwrap_or_default()),
        ErrorCode::HttpRequestDenied => "request denied: host not granted to this plugin".into(),
        ErrorCode::InternalError(Some(m)) => m.clone(),
        other => format!("{other:?}"),
    }
}

fn send(method: Method, url: &url::Url, body: Option<&str>, run_id: &str) -> Result<Answer, String> {
    let headers = Fields::new();
    // The run's id, stable for a job's fire time: a receiver drops a replay by it.
    if !run_id.is_empty() {
        headers.append("idempotency-key", run_id.as_bytes()).ok();
    }
    if let Some(body) = body {
        headers.append("content-type", b"application/json").map_err(|e| format!("{e:?}"))?;
        // A body of known size goes with its length, not chunked: plain HTTP/1.1 servers (Python's
        // http.server, many WSGI setups) read only `Content-Length` bytes, as RuQi 1.x sent them.
        headers.append("content-length", body.len().to_string().as_bytes()).map_err(|e| format!("{e:?}"))?;
    }
    headers.append("user-agent", format!("ruqi-http-post/{}", env!("CARGO_PKG_VERSION")).as_bytes()).ok();
    let request = OutgoingRequest::new(headers);
    request.set_method(&method).map_err(|()| "bad method")?;
    let scheme = if url.scheme() == "https" { Scheme::Https } else { Scheme::Http };
    request.set_scheme(Some(&scheme)).map_err(|()| "bad scheme")?;
    let authority = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    request.set_authority(Some(&authority)).map_err(|()| "bad authority")?;
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    request.set_path_with_query(Some(&path)).map_err(|()| "bad path")?;
    let outgoing = request.body().map_err(|()| "request body taken twice")?;

    let options = RequestOptions::new();
    options.set_connect_timeout(Some(TIMEOUT_NS)).ok();
    options.set_first_byte_timeout(Some(TIMEOUT_NS)).ok();
    options.set_between_bytes_timeout(Some(TIMEOUT_NS)).ok();
    let future = outgoing_handler::handle(request, Some(options)).map_err(|e| describe(&e))?;
    // A request the host refuses (or cannot connect) closes the body stream; the reason is then
    // in the response future, so a failed write defers to it.
    let written: Result<(), String> = (|| {
        let stream = outgoing.write().map_err(|()| "request stream taken twice")?;
        for chunk in body.unwrap_or_default().as_bytes().chunks(4096) {
            stream.blocking_write_and_flush(chunk).map_err(|e| format!("sending the body: {e:?}"))?;
        }
        drop(stream);
        OutgoingBody::finish(outgoing, None).map_err(|e| describe(&e))
    })();

    let response = loop {
        match future.get() {
            Some(result) => break result.map_err(|()| "response taken twice")?.map_err(|e| describe(&e))?,
            None => future.subscribe().block(),
        }
    };
    written?;
    let status = response.status();
    let location = response.headers().get("location").first().map(|v| String::from_utf8_lossy(v).into_owned());
    let incoming = response.consume().map_err(|()| "response body taken twice")?;
    let mut data = Vec::new();
    {
        let stream = incoming.stream().map_err(|()| "response stream taken twice")?;
        while data.len() < MAX_BODY {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => data.extend_from_slice(&chunk),
                Err(wasip2::io::streams::StreamError::Closed) => break,
                Err(e) => return Err(format!("reading the answer: {e:?}")),
            }
        }
    }
    Ok(Answer { status, location, body: data })
}

/// POSTs, following redirects as urllib2 does (301/302/303 become a GET; 307/308 repeat the POST).
fn post(p: &Post, run_id: &str) -> Result<Answer, String> {
    let (mut method, mut url, mut body) = (Method::Post, p.url.clone(), Some(p.body.as_str()));
    for _ in 0..=MAX_REDIRECTS {
        let answer = send(method.clone(), &url, body, run_id)?;
        let next = match (answer.status, &answer.location) {
            (301..=303, Some(l)) => {
                (method, body) = (Method::Get, None);
                l
            }
            (307 | 308, Some(l)) => l,
            _ => return Ok(answer),
        };
        url = url.join(next).map_err(|e| format!("bad redirect location {next:?}: {e}"))?;
    }
    Err(format!("more than {MAX_REDIRECTS} redirects"))
}

struct HttpPost;

impl Executor for HttpPost {
    fn describe() -> PluginInfo {
        PluginInfo::new("http-post", env!("CARGO_PKG_VERSION"), &["http://", "https://"])
    }

    fn validate(cmd: String) -> Result<(), String> {
        parse(&cmd).map(|_| ())
    }

    fn execute(run: RunRequest) -> Result<RunOutcome, String> {
        let mut p = parse(&run.cmd)?;
        p.body = merge(p.body, run.params.as_deref())?;
        Ok(match post(&p, &run.run_id) {
            Err(reason) => RunOutcome::failed(format!("POST {} failed: {reason}", p.url)),
            Ok(a) => {
                let text = String::from_utf8_lossy(&a.body).into_owned();
                let is_json = serde_json::from_slice::<serde_json::Value>(&a.body).is_ok();
                match (a.status, is_json) {
                    (200..=299, true) => RunOutcome::ok(text),
                    (200..=299, false) => {
                        RunOutcome::failed(format!("HTTP {}: the answer is not JSON: {text}", a.status))
                    }
                    (s, _) => RunOutcome::failed(format!("HTTP {s}: {text}")),
                }
            }
        })
    }
}

ruqi_plugin_sdk::export_plugin!(HttpPost);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_ruqi() {
        let p = parse("http://127.0.0.1:8080/a/b?x=1").unwrap();
        assert_eq!((p.url.as_str(), p.body.as_str()), ("http://127.0.0.1:8080/a/b?x=1", "{}"));
        assert_eq!(parse(r#"https://h/p#{"a":1}"#).unwrap().body, r#"{"a":1}"#);
        assert_eq!(parse(r##"http://h/p#{"a":"#1"}"##).unwrap().body, r##"{"a":"#1"}"##);
        assert_eq!(parse(r#"http://h/p#{"a":1}#ignored"#).unwrap().body, r#"{"a":1}"#);
    }

    #[test]
    fn params_merge_into_the_body() {
        assert_eq!(merge(r#"{"a":1}"#.into(), None).unwrap(), r#"{"a":1}"#);
        assert_eq!(merge("{}".into(), Some(r#"{"p":true}"#)).unwrap(), r#"{"p":true}"#);
        assert_eq!(merge(r#"{"a":1,"b":2}"#.into(), Some(r#"{"b":3,"c":[4]}"#)).unwrap(), r#"{"a":1,"b":3,"c":[4]}"#);
        assert_eq!(merge("{}".into(), Some("[1]")).unwrap_err(), r#"params must be a JSON object, not "[1]""#);
        assert!(merge("{}".into(), Some("{bad")).unwrap_err().starts_with("params must be a JSON object: "));
    }

    #[test]
    fn refuses_what_ruqi_would_lose() {
        for bad in ["http://", "httpfoo", "http://h/p#", "http://h/p#[1]", "http://h/p#{bad", "ftp://h/x"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
