//! Builds the plugins workspace (`plugins/`) to wasm32-wasip2 components so every test runs
//! against real plugins, and tells the tests where they are (`RUQI_TEST_WASM_DIR`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir")).join("..");
    let plugins = root.join("plugins");
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    for watched in ["Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", plugins.join(watched).display());
    }
    // every member crate of the plugins workspace: its sources and manifest
    for entry in std::fs::read_dir(&plugins).expect("plugins/").flatten() {
        let dir = entry.path();
        if dir.join("Cargo.toml").is_file() {
            println!("cargo:rerun-if-changed={}", dir.join("src").display());
            println!("cargo:rerun-if-changed={}", dir.join("Cargo.toml").display());
        }
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&plugins).args(["build", "--release", "--target", "wasm32-wasip2"]);
    // Do not leak this build's settings (target dir, flags, jobserver) into the nested build.
    for var in [
        "CARGO_TARGET_DIR",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("cannot run cargo for plugins/");
    assert!(
        status.success(),
        "building plugins/ failed (is the wasm32-wasip2 target installed? `make plugins` installs it)"
    );
    let out = plugins.join("target/wasm32-wasip2/release");
    println!("cargo:rustc-env=RUQI_TEST_WASM_DIR={}", out.canonicalize().expect("plugins built").display());
    println!(
        "cargo:rustc-env=RUQI_TEST_FIXTURES={}",
        root.join("tests/fixtures").canonicalize().expect("fixtures").display()
    );
}
