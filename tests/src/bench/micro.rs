//! The in-process micro figures (the first bench, before the HTTP harness), one section of the table. Here
//! the "peer" column is the plain Rust way to do the same thing, not APScheduler:
//!
//! - plugin runtime overhead: a no-op run through the wasmtime runtime (`Runtime::execute`
//!   back to back: the instance made ahead of the run when the background has made it, else
//!   made on the run's path; the call) against the same no-op as a plain async call;
//! - http-post: one run against a local HTTP server, against a plain reqwest POST;
//! - baichuan: one publish to the local Redis, against a plain redis-rs MULTI/EXEC.
//!
//! The I/O figures and their peers are timed in turn (a run, then each peer's call, again),
//! so a drift of the machine's speed falls on all of them alike.

use std::time::{Duration, Instant};

use ruqi::plugin::{Grants, RunRequest, Runtime};
use ruqi_tests::run_request;

use super::report::{Better, Cell, Row, Unit};

/// Median and 99th percentile of durations, in seconds.
fn stats(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64();
    (at(0.5), at(0.99))
}

#[inline(never)]
async fn native_noop(request: &RunRequest) -> (bool, String) {
    (true, std::hint::black_box(request.cmd.clone()))
}

fn pair(rows: &mut Vec<Row>, what: &str, plugin: (f64, f64), plain: (f64, f64), unit: Unit) {
    rows.push(Row::new(
        "micro",
        format!("{what}, median"),
        unit,
        Better::Lower,
        Cell::Value(plugin.0),
        Cell::Value(plain.0),
    ));
    rows.push(Row::new(
        "micro",
        format!("{what}, p99"),
        unit,
        Better::Lower,
        Cell::Value(plugin.1),
        Cell::Value(plain.1),
    ));
}

/// Plugin no-op run vs a native async call.
pub async fn plugin_overhead(runs: usize) -> anyhow::Result<Vec<Row>> {
    let work = tempfile::tempdir()?;
    let runtime = Runtime::new(work.path().to_path_buf(), None)?;
    let plugin = runtime.load_file(&ruqi_tests::wasm("test-hostile"), Grants::default()).await?;
    let req = run_request("hostile:noop", "bench");
    for _ in 0..200 {
        runtime.execute(&plugin, &req, None).await;
    }
    let mut wasm = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let outcome = runtime.execute(&plugin, &req, None).await;
        wasm.push(t.elapsed());
        anyhow::ensure!(outcome.success(), "no-op run failed: {}", outcome.into_output());
    }
    let mut native = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(native_noop(&req).await);
        native.push(t.elapsed());
    }
    let mut rows = Vec::new();
    pair(&mut rows, "plugin no-op run vs native async call", stats(wasm), stats(native), Unit::Micros);
    Ok(rows)
}

/// One call to time, as [`time_in_turn`] takes it.
type Call<'a> = Box<dyn FnMut() -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'a>> + 'a>;

/// Times `runs` calls of each of `calls`, taken in turn (one of each, then again), after 20
/// warm-up rounds; the median and p99 of each. Taken in turn, a change of the machine's speed
/// during the measurement (this VM's varies by a factor of two between minutes) falls on all
/// of them alike, so their ratios hold.
async fn time_in_turn(runs: usize, mut calls: Vec<Call<'_>>) -> anyhow::Result<Vec<(f64, f64)>> {
    for _ in 0..20 {
        for call in calls.iter_mut() {
            call().await?;
        }
    }
    let mut samples = vec![Vec::with_capacity(runs); calls.len()];
    for _ in 0..runs {
        for (call, samples) in calls.iter_mut().zip(samples.iter_mut()) {
            let t = Instant::now();
            call().await?;
            samples.push(t.elapsed());
        }
    }
    Ok(samples.into_iter().map(stats).collect())
}

/// An http-post run vs reqwest POSTs (new client each; pooled connection).
pub async fn http_post(runs: usize) -> anyhow::Result<Vec<Row>> {
    // The receiver: nginx (Debian's, `make bench` installs it) answering from its config, so the
    // receiver costs nearly nothing; without it, an axum server in this process, and a note.
    let (addr, _nginx, axum_server) = match Nginx::start().await {
        Ok(n) => (n.addr, Some(n), None),
        Err(e) => {
            let app = axum::Router::new().route(
                "/ok",
                axum::routing::post(
                    |body: String| async move { format!("{{\"stat\":\"OK\",\"len\":{}}}", body.len()) },
                ),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            tracing_free_note(&format!(
                "micro http-post: nginx unavailable ({e:#}); an in-process axum receiver instead"
            ));
            (addr, None, Some(tokio::spawn(async move { axum::serve(listener, app).await })))
        }
    };
    let work = tempfile::tempdir()?;
    let runtime = Runtime::new(work.path().to_path_buf(), None)?;
    let plugin = runtime.load_file(&ruqi_tests::wasm("http-post"), Grants::defaults_for("http-post")).await?;
    let url = format!("http://{addr}/ok");
    let req = run_request(&format!("{url}#{{\"str_info\":\"hi\"}}"), "bench");
    let (runtime, plugin, req) = (&runtime, &plugin, &req);
    let via_plugin: Call = Box::new(move || {
        Box::pin(async move {
            let out = runtime.execute(plugin, req, None).await;
            anyhow::ensure!(out.success(), "http-post run failed: {}", out.into_output());
            Ok(())
        })
    });
    let target = url.clone();
    let post = move |client: reqwest::Client| {
        let url = target.clone();
        async move {
            let resp = client
                .post(&url)
                .header("content-type", "application/json")
                .body("{\"str_info\":\"hi\"}")
                .send()
                .await?;
            anyhow::ensure!(resp.status().is_success());
            serde_json::from_str::<serde_json::Value>(&resp.text().await?)?;
            Ok(())
        }
    };
    let fresh: Call = Box::new({
        let post = post.clone();
        move || Box::pin(post(reqwest::Client::new()))
    });
    let pooled_client = reqwest::Client::new();
    let pooled: Call = Box::new(move || Box::pin(post(pooled_client.clone())));
    let [via_plugin, fresh, pooled] = time_in_turn(runs, vec![via_plugin, fresh, pooled])
        .await?
        .try_into()
        .map_err(|_| anyhow::anyhow!("three figures"))?;
    if let Some(server) = axum_server {
        server.abort();
    }
    let mut rows = Vec::new();
    pair(&mut rows, "http-post run vs reqwest POST, new client", via_plugin, fresh, Unit::Micros);
    pair(&mut rows, "http-post run vs reqwest POST, pooled", via_plugin, pooled, Unit::Micros);
    rows.push(Row::goal(
        "micro",
        "http-post run, median, within 1.5x of reqwest's pooled POST",
        Unit::Micros,
        Better::Lower,
        Cell::Value(via_plugin.0),
        pooled.0 * 1.5,
    ));
    Ok(rows)
}

/// A baichuan publish vs redis-rs MULTI/EXEC (new connection each; reused connection).
pub async fn baichuan(runs: usize) -> anyhow::Result<Vec<Row>> {
    let work = tempfile::tempdir()?;
    let runtime = Runtime::new(work.path().to_path_buf(), None)?;
    let plugin = runtime.load_file(&ruqi_tests::wasm("baichuan"), Grants::defaults_for("baichuan")).await?;
    let topic = format!("/ruqi-bench-{}", uuid::Uuid::new_v4().simple());
    let req = run_request(&format!("{topic}#{{\"str_info\":\"mq\"}}"), "bench");
    let (runtime, plugin, req) = (&runtime, &plugin, &req);
    let via_plugin: Call = Box::new(move || {
        Box::pin(async move {
            let out = runtime.execute(plugin, req, None).await;
            anyhow::ensure!(out.success(), "baichuan run failed: {}", out.into_output());
            Ok(())
        })
    });
    let client = redis::Client::open("redis://127.0.0.1:6379/0")?;
    let queue = format!("mq:queue:{{{topic}}}");
    let (to_queue, of_topic) = (queue.clone(), topic.clone());
    let publish = move |mut con: redis::aio::MultiplexedConnection| {
        let queue = to_queue.clone();
        let topic = of_topic.clone();
        async move {
            let id = uuid::Uuid::new_v4().to_string();
            let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
            let key = format!("mq:msg:{id}");
            let _: () = redis::pipe()
                .atomic()
                .sadd("mq:queues", &queue)
                .ignore()
                .hset_multiple(
                    &key,
                    &[
                        ("data", "{\"str_info\":\"mq\"}"),
                        ("origin", topic.as_str()),
                        ("status", "queued"),
                        ("created_at", now.as_str()),
                        ("enqueued_at", now.as_str()),
                        ("timeout", "180"),
                        ("ip", "127.0.0.1"),
                    ],
                )
                .ignore()
                .rpush(&queue, &id)
                .ignore()
                .query_async(&mut con)
                .await?;
            Ok(())
        }
    };
    let fresh: Call = Box::new({
        let (client, publish) = (client.clone(), publish.clone());
        move || {
            let (client, publish) = (client.clone(), publish.clone());
            Box::pin(async move { publish(client.get_multiplexed_async_connection().await?).await })
        }
    });
    let shared = client.get_multiplexed_async_connection().await?;
    let reused: Call = Box::new(move || Box::pin(publish(shared.clone())));
    let [via_plugin, fresh, reused] = time_in_turn(runs, vec![via_plugin, fresh, reused])
        .await?
        .try_into()
        .map_err(|_| anyhow::anyhow!("three figures"))?;
    // leave nothing behind
    let mut con = client.get_multiplexed_async_connection().await?;
    let ids: Vec<String> = redis::cmd("LRANGE").arg(&queue).arg(0).arg(-1).query_async(&mut con).await?;
    for id in ids {
        let _: () = redis::cmd("DEL").arg(format!("mq:msg:{id}")).query_async(&mut con).await?;
    }
    let _: () = redis::cmd("DEL").arg(&queue).query_async(&mut con).await?;
    let _: () = redis::cmd("SREM").arg("mq:queues").arg(&queue).query_async(&mut con).await?;
    let mut rows = Vec::new();
    pair(&mut rows, "baichuan publish vs redis-rs, new connection", via_plugin, fresh, Unit::Micros);
    pair(&mut rows, "baichuan publish vs redis-rs, reused connection", via_plugin, reused, Unit::Micros);
    rows.push(Row::goal(
        "micro",
        "baichuan publish, median, within 1.5x of redis-rs on a reused connection",
        Unit::Micros,
        Better::Lower,
        Cell::Value(via_plugin.0),
        reused.0 * 1.5,
    ));
    Ok(rows)
}

/// Prints a note on stderr (the harness's progress stream).
fn tracing_free_note(text: &str) {
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{text}");
    }
}

/// An nginx on 127.0.0.1 answering `POST /ok` with `{"stat":"OK"}` from its config (one process,
/// no log, connections kept alive); stopped when dropped.
pub struct Nginx {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts one (`nginx` from PATH or /usr/sbin).
    pub async fn start() -> anyhow::Result<Self> {
        let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .ok_or_else(|| anyhow::anyhow!("no nginx (make nginx installs Debian's)"))?;
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let d = dir.path().display();
        let conf = format!(
            "master_process off;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  keepalive_requests 1000000;\n  keepalive_timeout 120s;\n\
               client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
               uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               server {{\n    listen 127.0.0.1:{port};\n\
                 location /ok {{ default_type application/json; return 200 '{{\"stat\":\"OK\"}}'; }}\n  }}\n}}\n"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf)?;
        let child = tokio::process::Command::new(bin)
            .arg("-c")
            .arg(&path)
            .arg("-p")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(5);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            anyhow::ensure!(Instant::now() < deadline, "nginx did not listen on {addr}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self { addr, child, _dir: dir })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // One process (no master): killing it stops it all.
        let _ = self.child.start_kill();
    }
}
