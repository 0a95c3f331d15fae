//! The web dashboard: a page of plain HTML, CSS and JavaScript (no framework) that calls the
//! RuQi routes like any other client. Its files are compiled into the binary, so the node
//! serves it with nothing to install and the page fetches nothing from elsewhere.
//!
//! `/` answers the page and `/ui/<file>` its assets. Neither needs a token: they reveal nothing
//! about jobs; the page asks for the token itself and sends it with each API call. Every answer
//! carries an `ETag` and `cache-control: no-cache`, so a browser revalidates (a 304 costs one
//! round trip) and never runs the scripts of a binary it has since replaced; and a strict
//! content security policy: scripts, styles and API calls from this origin only.

use std::hash::{Hash, Hasher};
use std::sync::LazyLock;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode, header};

/// One embedded file.
struct Asset {
    /// Its name under `/ui/` (the page itself is served at `/`).
    name: &'static str,
    /// Its `Content-Type`.
    content_type: &'static str,
    /// Its bytes.
    body: &'static [u8],
}

const INDEX: Asset = Asset {
    name: "index.html",
    content_type: "text/html; charset=utf-8",
    body: include_bytes!("dashboard/index.html"),
};

/// The assets under `/ui/`.
const ASSETS: [Asset; 12] = [
    INDEX,
    Asset { name: "app.css", content_type: "text/css; charset=utf-8", body: include_bytes!("dashboard/app.css") },
    Asset { name: "app.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("dashboard/app.js") },
    Asset { name: "api.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("dashboard/api.js") },
    Asset { name: "dom.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("dashboard/dom.js") },
    Asset {
        name: "pages.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("dashboard/pages.js"),
    },
    Asset {
        name: "i18n.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("dashboard/i18n.js"),
    },
    Asset {
        name: "around.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("dashboard/around.js"),
    },
    Asset {
        name: "overview.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("dashboard/overview.js"),
    },
    Asset {
        name: "vendor/uPlot.esm.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("dashboard/vendor/uPlot.esm.js"),
    },
    Asset {
        name: "vendor/uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("dashboard/vendor/uPlot.min.css"),
    },
    Asset { name: "icon.svg", content_type: "image/svg+xml", body: include_bytes!("dashboard/icon.svg") },
];

/// What the page may load and call: this origin only; no frames around it.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Each asset's `ETag`: a hash of this binary's version and the asset's bytes.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (env!("CARGO_PKG_VERSION"), a.body).hash(&mut h);
            HeaderValue::from_str(&format!("\"{:016x}\"", h.finish())).expect("hex")
        })
        .collect()
});

/// The answer for `path` (after one trailing `/` is stripped), or `None` when the path is not
/// the dashboard's: `""` (and `/`, from `//`) is the page, `/ui/<name>` an asset.
pub fn response(path: &str, headers: &HeaderMap) -> Option<Response<Body>> {
    let name = match path {
        "" | "/" => INDEX.name,
        _ => path.strip_prefix("/ui/")?,
    };
    let i = ASSETS.iter().position(|a| a.name == name)?;
    let (asset, etag) = (&ASSETS[i], &ETAGS[i]);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if fresh {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(Body::from(asset.body))
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::ETAG, etag.clone());
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    Some(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_assets_and_revalidation() {
        let none = HeaderMap::new();
        let page = response("", &none).expect("the page");
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(page.headers()[header::CACHE_CONTROL], "no-cache");
        let js = response("/ui/app.js", &none).expect("app.js");
        assert_eq!(js.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        for other in ["/ui/", "/ui/nope.js", "/ui/../Cargo.toml", "/index.html", "/ui", "/UI/app.js"] {
            assert!(response(other, &none).is_none(), "{other}");
        }
        let mut cond = HeaderMap::new();
        cond.insert(header::IF_NONE_MATCH, js.headers()[header::ETAG].clone());
        assert_eq!(response("/ui/app.js", &cond).unwrap().status(), StatusCode::NOT_MODIFIED);
        assert_eq!(response("/ui/app.css", &cond).unwrap().status(), StatusCode::OK);
    }

    #[test]
    fn every_file_the_page_names_is_served() {
        let page = std::str::from_utf8(INDEX.body).unwrap();
        let js: String = ASSETS.iter().filter_map(|a| std::str::from_utf8(a.body).ok()).collect();
        for needle in page.split("/ui/").skip(1).chain(js.split("from './").skip(1)) {
            let name = needle.split(['"', '\'', '?']).next().unwrap();
            assert!(ASSETS.iter().any(|a| a.name == name), "{name} is referenced but not embedded");
        }
        // Nothing is loaded from elsewhere (the content security policy would block it anyway).
        assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("\"//"), "{page}");
    }
}
