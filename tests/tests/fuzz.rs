//! The API fuzzed from its own OpenAPI document: a real `ruqi serve` publishes
//! `/openapi.json`, `openapi-spec-validator` (PyPI) validates it, and `schemathesis` (PyPI)
//! sends at least 2,000 generated requests to every route and alias (GET and POST, valid and
//! invalid parameters and bodies): no 5xx, every answer conforms to the document (status codes,
//! content types, headers, schemas) and is RuQi's envelope with a one-line ASCII reason
//! (`tests/fuzz/hooks.py`). Two of schemathesis' checks do not apply to RuQi's API and are left
//! out: `negative_data_rejection` (RuQi answers invalid input with HTTP 200 and `ERR_BAD_PARAMS`,
//! as 1.x does) and `unsupported_method` (every method reaches a route, as in 1.x).
//! `make pytools` (part of `make test`) installs the tools into `target/pytools`.

use std::path::PathBuf;
use std::process::Command;

use ruqi_tests::cluster::{NodeProcess, node_args};
use ruqi_tests::{install_plugin, ruqi_bin};

fn pytools() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/pytools/bin");
    assert!(dir.join("schemathesis").exists(), "{} is missing: run `make pytools` (make test does)", dir.display());
    dir
}

#[tokio::test]
async fn the_api_conforms_to_its_openapi_document_under_fuzzing() {
    let tools = pytools();
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    for p in ["shell-bridge", "template"] {
        install_plugin(&plugins, p, None);
    }
    let args =
        node_args(&format!("sqlite://{}", dir.path().join("fuzz.db").display()), &plugins, &ruqi_tests::fixtures());
    let node = NodeProcess::serve(&ruqi_bin(), &args, dir.path().join("node.log")).await;
    let url = format!("http://{}/openapi.json", node.addr);

    let doc = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &doc).unwrap();
    let valid = Command::new(tools.join("openapi-spec-validator")).arg(&file).output().expect("openapi-spec-validator");
    assert!(
        valid.status.success(),
        "{}{}",
        String::from_utf8_lossy(&valid.stdout),
        String::from_utf8_lossy(&valid.stderr)
    );
    let spec: serde_json::Value = serde_json::from_str(&doc).unwrap();
    for name in ["job_add", "add_job", "job_list", "get_jobs", "get_history", "job_history_clear", "wakeup"] {
        assert!(spec["paths"][format!("/ruqi/{name}")].is_object(), "/ruqi/{name} documented");
    }

    let hooks = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let scratch = dir.path().to_owned(); // schemathesis keeps its example database in its folder
    let run = tokio::task::spawn_blocking(move || {
        Command::new(tools.join("schemathesis"))
            .current_dir(scratch)
            .args(["run", &url, "--checks", "all", "--exclude-checks", "negative_data_rejection,unsupported_method"])
            .args(["--max-examples", "30", "--seed", "20261129", "--no-color"])
            .env("SCHEMATHESIS_HOOKS", "hooks")
            .env("PYTHONPATH", hooks)
            .output()
            .expect("schemathesis")
    })
    .await
    .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "schemathesis found problems:\n{out}\n{}", String::from_utf8_lossy(&run.stderr));
    let generated: u64 = regex::Regex::new(r"(\d+) generated")
        .unwrap()
        .captures(&out)
        .and_then(|c| c[1].parse().ok())
        .unwrap_or_else(|| panic!("no count in:\n{out}"));
    assert!(generated >= 2000, "only {generated} requests were generated:\n{out}");
    eprintln!("schemathesis: {generated} requests, no issues");
    // still serving
    assert_eq!(node.client.get("scheduler_status", "").await.stat, "OK");
    node.terminate();
}
