//! Builds `leasedb-plugin` for `wasm32-wasip2` with a cargo of its own (its own
//! target directory, so it never waits on the outer build's lock), once as the
//! product and once per fixture feature set (`FIXTURES`), and emits their paths.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    // Shared by every build of the artifacts (debug, release, test), so a
    // clean `cargo test` after `cargo build` reuses the compiled SQLite.
    let target_dir = root.join("target").join("wasm-plugin");

    for watched in ["plugin/src", "plugin/Cargo.toml", "wit", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    for var in [
        "CC_wasm32_wasip2",
        "AR_wasm32_wasip2",
        "CFLAGS_wasm32_wasip2",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let product = build(&root, &target_dir, &[]);
    let product = copy(&product, &out_dir.join("leasedb_plugin.wasm"));
    println!("cargo:rustc-env=LEASEDB_PLUGIN_WASM={}", product.display());
    for (features, file, var) in FIXTURES {
        let built = build(&root, &target_dir, &["--features", features]);
        let built = copy(&built, &out_dir.join(file));
        println!("cargo:rustc-env={var}={}", built.display());
    }
}

/// Fixture builds: (features, file name, env var carrying its path).
const FIXTURES: &[(&str, &str, &str)] = &[
    (
        "test-faults",
        "leasedb_plugin_test_faults.wasm",
        "LEASEDB_PLUGIN_TEST_FAULTS_WASM",
    ),
    // Hot swap (SPEC §11): the previous interface, the next release, and releases that must be refused or rolled back.
    (
        "wit-v0-1",
        "leasedb_plugin_wit_v0_1.wasm",
        "LEASEDB_PLUGIN_WIT_V0_1_WASM",
    ),
    (
        "fixture-schema-v2",
        "leasedb_plugin_schema_v2.wasm",
        "LEASEDB_PLUGIN_SCHEMA_V2_WASM",
    ),
    (
        "fixture-bad-migration",
        "leasedb_plugin_bad_migration.wasm",
        "LEASEDB_PLUGIN_BAD_MIGRATION_WASM",
    ),
    (
        "fixture-trap-first-call",
        "leasedb_plugin_trap_first_call.wasm",
        "LEASEDB_PLUGIN_TRAP_FIRST_CALL_WASM",
    ),
    (
        "fixture-major-1",
        "leasedb_plugin_major_1.wasm",
        "LEASEDB_PLUGIN_MAJOR_1_WASM",
    ),
];

fn build(root: &Path, target_dir: &Path, extra: &[&str]) -> PathBuf {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            "leasedb-plugin",
            "--target",
            TARGET,
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .args(extra);
    // The outer build's flags are for the host target, not for wasm.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(var);
    }
    // clang-19 builds SQLite for wasm; without -ffreestanding it reaches for glibc headers.
    set_default(&mut cmd, "CC_wasm32_wasip2", "clang-19");
    set_default(&mut cmd, "AR_wasm32_wasip2", "llvm-ar-19");
    set_default(&mut cmd, "CFLAGS_wasm32_wasip2", "-ffreestanding");
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("running cargo for the {TARGET} plugin: {e}"));
    assert!(
        status.success(),
        "building the plugin for {TARGET} failed (is the target installed? `rustup target add {TARGET}`; is clang-19 installed?)"
    );
    target_dir
        .join(TARGET)
        .join("release")
        .join("leasedb_plugin.wasm")
}

fn set_default(cmd: &mut Command, var: &str, value: &str) {
    if env::var_os(var).is_none() {
        cmd.env(var, value);
    }
}

fn copy(from: &Path, to: &Path) -> PathBuf {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
    to.to_path_buf()
}
