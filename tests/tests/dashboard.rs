//! The web dashboard: the page and its files are served from the binary without a token, with
//! RuQi's 400 kept for every other path; and the whole dashboard driven in a real browser
//! (`tests/browser/dashboard.test.mjs`: Debian's Chromium through playwright-core) against two
//! real servers, one without tokens and one with. `make browser` installs what that needs.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use ruqi_tests::{ServerOptions, TestServer};
use serde_json::json;

/// The browser the test drives (`RUQI_CHROMIUM` overrides it).
fn chromium() -> PathBuf {
    std::env::var_os("RUQI_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// `tests/browser`: the JS test, its package.json and node_modules.
fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// `target/browser`, where the screenshots go (beside the `ruqi` binary's profile folder).
fn screenshots_dir() -> PathBuf {
    let bin = ruqi_tests::ruqi_bin();
    bin.parent().and_then(Path::parent).expect("target dir").join("browser")
}

/// Fails (never skips) when the browser, node or playwright-core is missing.
fn assert_browser_installed() {
    let make = "run `make browser` to install them (Debian's chromium and `npm ci --prefix tests/browser`)";
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(node.is_ok_and(|o| o.status.success()), "node is not on PATH: {make}");
    assert!(chromium().is_file(), "{} is missing: {make}", chromium().display());
    let pw = browser_dir().join("node_modules/playwright-core/package.json");
    assert!(pw.is_file(), "{} is missing: {make}", pw.display());
}

#[tokio::test]
async fn the_page_and_its_files_need_no_token_and_other_paths_stay_400() {
    let s = TestServer::start(ServerOptions { tokens: vec!["s3cret".into()], ..Default::default() }).await;
    let get = |path: &'static str| s.client.send(reqwest::Method::GET, path, None);
    let page = get("/").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(page.headers["cache-control"], "no-cache");
    assert!(page.text.contains(r#"<script type="module" src="/ui/app.js">"#), "{}", page.text);
    for (path, content_type) in [
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/app.css", "text/css; charset=utf-8"),
        ("/ui/icon.svg", "image/svg+xml"),
        ("/ui/index.html", "text/html; charset=utf-8"),
    ] {
        let a = get(path).await;
        assert_eq!((a.status, a.headers["content-type"].to_str().unwrap()), (200, content_type), "{path}");
        assert!(a.headers["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
        let etag = a.headers["etag"].to_str().unwrap().to_owned();
        let again = s.client.send_raw(reqwest::Method::GET, path, &[("if-none-match", &etag)], None).await;
        assert_eq!(again.status, 304, "{path}");
    }
    for path in ["/ui/nope.js", "/ui/", "/ui", "/UI/app.js", "/dashboard", "/index.html", "/ruqi/"] {
        let a = get(path).await;
        assert_eq!((a.status, a.reason.as_deref()), (400, Some("API Not Found")), "{path}");
    }
    // The page loads without a token; the API it calls still needs one.
    assert_eq!(s.client.get("job_list", "").await.status, 401);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_real_browser() {
    assert_browser_installed();
    let open = TestServer::start(ServerOptions {
        plugins: vec![("shell-bridge", None), ("template", Some("memory_mb = 8\n".into()))],
        calendars: vec![("cn", "[years.2026]\nholidays = [\"2026-10-01..2026-10-07\"]\n".into())],
        ..Default::default()
    })
    .await;
    // A file that fails to load, for the plugins page (the folder is watched and reloaded).
    std::fs::write(open.plugins_dir().join("broken.wasm"), b"not a component").unwrap();
    let sleeper = format!("bash scripts/spawn_and_sleep.sh {}", open.dir.path().join("sleeper.pid").display());
    for (trigger, id, name, cmd, rule) in [
        ("cron", "nightly-report", "reports", "echo:nightly report", "0 20 2 * * *"),
        ("interval", "ping-api", "health", "echo:ping", "5m"),
        ("cron", "sleeper", "slow", sleeper.as_str(), "0 0 3 * * *"),
    ] {
        let body = json!({"job_trigger": trigger, "job_id": id, "job_name": name, "cmd": cmd, "rule": rule});
        assert_eq!(open.client.post("job_add", body).await.stat, "OK");
    }
    // A second version of ping-api, for the versions page (rolled back there).
    let modify = json!({"job_trigger": "interval", "job_id": "ping-api", "job_name": "health", "cmd": "echo:ping", "rule": "10m"});
    assert_eq!(open.client.post("job_modify", modify).await.stat, "OK");
    // sleeper: a run that goes on until it is killed, for the runs page (paused: it runs only by hand).
    assert_eq!(open.client.post("job_pause", json!({"job_id": "sleeper"})).await.stat, "OK");
    let secret = format!("t-{}", uuid::Uuid::new_v4().simple());
    let guarded = TestServer::start(ServerOptions { tokens: vec![secret.clone()], ..Default::default() }).await;
    guarded.client.with_token(&secret).add("interval", "guarded", "bash scripts/hello.sh", "1h").await;

    let shots = screenshots_dir();
    let started = Instant::now();
    let child = tokio::process::Command::new("node")
        .arg("dashboard.test.mjs")
        .current_dir(browser_dir())
        .env("RUQI_URL", format!("http://{}", open.node.as_ref().unwrap().addr))
        .env("RUQI_TOKEN_URL", format!("http://{}", guarded.node.as_ref().unwrap().addr))
        .env("RUQI_TOKEN", &secret)
        .env("RUQI_SCREENSHOTS", &shots)
        .env("RUQI_CHROMIUM", chromium())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run node");
    let out = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .expect("the browser test finishes within 3 minutes")
        .expect("node's output");
    let report = format!(
        "node tests/browser/dashboard.test.mjs ({:.1} s, {}):\n{}\n{}",
        started.elapsed().as_secs_f64(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}\nscreenshots (failure.png) in {}", shots.display());
    eprintln!("{report}");
    for name in
        ["jobs", "add-job", "history", "runs", "run", "plugins", "scheduler", "audit", "versions", "alerts", "overview"]
    {
        assert!(shots.join(format!("{name}.png")).is_file(), "screenshot {name}.png");
    }
    open.stop().await;
    guarded.stop().await;
}
