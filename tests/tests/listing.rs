//! Unpaged listings are streamed: a real `ruqi serve` process answers `job_history_list` with
//! every one of 1,000,000 history rows (and `job_list` with every one of 200,000 jobs) while
//! its peak memory stays flat. A binary of its own, so its measurements see only this server.

use futures_util::StreamExt;
use ruqi_tests::cluster::{NodeProcess, node_args};

const HISTORY_ROWS: u64 = 1_000_000;
const JOBS: u64 = 200_000;
/// Largest growth of the server's peak RSS while it streams (buffering would need gigabytes).
const FLAT_KIB: u64 = 64 * 1024;

/// Reads a response body to its end, counting its bytes and the occurrences of `needle`,
/// and keeping its first and last 64 bytes.
async fn read_counting(resp: reqwest::Response, needle: &[u8]) -> (u64, u64, Vec<u8>, Vec<u8>) {
    let (mut bytes, mut hits) = (0u64, 0u64);
    let (mut head, mut tail) = (Vec::new(), Vec::<u8>::new());
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("the body arrives whole");
        bytes += chunk.len() as u64;
        if head.len() < 128 {
            head.extend(chunk.iter().take(128 - head.len()));
        }
        // count across chunk boundaries: search the previous tail joined to this chunk
        let keep = needle.len() - 1;
        let mut window = tail[tail.len().saturating_sub(keep)..].to_vec();
        window.extend_from_slice(&chunk);
        hits += memchr::memmem::find_iter(&window, needle).count() as u64;
        tail = window[window.len().saturating_sub(64)..].to_vec();
    }
    (bytes, hits, head, tail)
}

#[tokio::test]
async fn unpaged_listings_stream_a_million_rows_in_flat_memory() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    ruqi_tests::install_plugin(&plugins, "shell-bridge", None);
    let db = dir.path().join("ruqi.db");
    let args = node_args(&format!("sqlite://{}", db.display()), &plugins, &ruqi_tests::fixtures());
    let node = NodeProcess::serve(&ruqi_tests::ruqi_bin(), &args, dir.path().join("node.log")).await;

    {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.unwrap();
        sqlx::query(&format!(
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < {HISTORY_ROWS})
             INSERT INTO ruqi_jobs_history (job_id, job_name, cmd, cmd_is_success, cmd_output, cmd_cost,
                                            scheduler_name, c_time, fire_time)
             SELECT 'job' || (x % 1000), 'bulk', 'bash scripts/hello.sh', x % 2,
                    'hello from RuQi, row ' || x || ' of a million, with some words to make it longer', 0.001,
                    'node:1:1', '2026-11-29 10:00:00.000000', x FROM n"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query(&format!(
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < {JOBS})
             INSERT INTO ruqi_jobs (id, next_run_time, job_state, job_lock, job_name, job_trigger, job_rule,
                                    u_time, c_time, revision)
             SELECT 'paused-' || x, NULL, CAST('{{\"v\":1,\"cmd\":\"bash scripts/hello.sh\",\"anchor_us\":null}}' AS BLOB),
                    0, 'bulk', 'cron', '0 0 3 * * *', '2026-11-29 10:00:00.000000',
                    '2026-11-29 10:00:00.000000', 1 FROM n"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    }

    let t0 = std::time::Instant::now();
    eprintln!("rows inserted");
    let http = reqwest::Client::new();
    let (peak_before, _) = node.memory_kib();
    let url = format!("http://{}/ruqi/job_history_list?page_size=0", node.addr);
    let resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let (bytes, rows, head, tail) = read_counting(resp, b"\"cmd_is_success\": ").await;
    assert_eq!(rows, HISTORY_ROWS, "every row arrives");
    assert!(head.starts_with(b"{\"stat\": \"OK\", \"data\": {\"total\": 1000000, \"list\": [{\"cmd_cost\": "));
    // Rows written without a run (as these are) end with the run keys, null.
    assert!(tail.ends_with(b"\"trigger\": null, \"outcome\": null}]}}"), "{}", String::from_utf8_lossy(&tail));

    eprintln!("history streamed in {:?}", t0.elapsed());
    let url = format!("http://{}/ruqi/job_list", node.addr);
    let (_, jobs, head, tail) = read_counting(http.get(&url).send().await.unwrap(), b"\"job_trigger\": ").await;
    assert_eq!(jobs, JOBS);
    assert!(
        head.starts_with(b"{\"stat\": \"OK\", \"data\": {\"total\": 200000, \"list\": [{\"next_run_time\": null"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    assert!(tail.ends_with(b"\"job_name\": \"bulk\"}]}}"));

    let url = format!("http://{}/ruqi/job_history_list?page_size=0&display=text&job_id=job7", node.addr);
    let (_, lines, head, tail) = read_counting(http.get(&url).send().await.unwrap(), b"\n").await;
    assert_eq!(lines, 1000 + 3, "header, rule, a line per row, total");
    assert!(head.starts_with(b"id "), "{}", String::from_utf8_lossy(&head));
    assert!(tail.ends_with(b"total: 1000\n"));

    let (peak_after, _) = node.memory_kib();
    eprintln!(
        "history stream: {bytes} bytes, {rows} rows; server peak RSS {} MiB before, {} MiB after",
        peak_before / 1024,
        peak_after / 1024
    );
    assert!(
        peak_after.saturating_sub(peak_before) < FLAT_KIB,
        "peak RSS grew from {peak_before} KiB to {peak_after} KiB while streaming"
    );
    node.terminate();
}
