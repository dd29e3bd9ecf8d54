//! Building `leasedb-plugin` for `wasm32-wasip2` from a build script, shared
//! by the product's build (`plugin/artifacts`) and the fixtures' build
//! (`plugin/fixtures`) through `#[path]`. Each build runs a cargo of its own
//! with its own target directory, so it never waits on the outer build's lock.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

/// How SQLite's C code is compiled for wasm, unless `CFLAGS_wasm32_wasip2`
/// says otherwise (`scripts/setup.sh` exports the same). `-nostdlibinc`: the
/// sqlite-wasm-rs shim's musl headers, never glibc's. Not `-ffreestanding`,
/// which implies `-fno-builtin`: every small fixed-size `memcpy` and
/// `memset` stayed a call (a renewal in the component up to 5% slower).
/// `-Dmemcmp=…`: SQLite's compares go to the plugin's word-at-a-time one
/// (`db/sqlite/memcmp.rs`), not wasi-libc's byte loop.
const SQLITE_WASM_CFLAGS: &str = "-nostdlibinc -Dmemcmp=leasedb_sqlite_memcmp";

/// The workspace root, from the build script's manifest dir (`plugin/<crate>`).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    manifest_dir
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Asks cargo to rebuild when the plugin's sources or toolchain settings change.
pub fn watch(root: &Path) {
    // The workspace manifest's release profile shapes the component too.
    for watched in [
        "plugin/src",
        "plugin/Cargo.toml",
        "Cargo.toml",
        "wit",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    for var in [
        "CC_wasm32_wasip2",
        "AR_wasm32_wasip2",
        "CFLAGS_wasm32_wasip2",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
}

/// Builds the plugin with `features` (none: the product) in
/// `target/<target_name>`, copies it into OUT_DIR as `file` and exports its
/// path as the env var `var`. The product and the fixtures use different
/// target directories: their builds may run at the same time, and every
/// feature set writes the same output file name.
pub fn build_into_out_dir(root: &Path, target_name: &str, features: &str, file: &str, var: &str) {
    let target_dir = root.join("target").join(target_name);
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let extra: Vec<&str> = if features.is_empty() {
        vec![]
    } else {
        vec!["--features", features]
    };
    let built = build(root, &target_dir, &extra);
    let to = out_dir.join(file);
    std::fs::copy(&built, &to).unwrap_or_else(|e| panic!("copying {}: {e}", built.display()));
    println!("cargo:rustc-env={var}={}", to.display());
}

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
            // The lock file's versions, never newer ones: part of a build
            // anyone can repeat byte for byte.
            "--locked",
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
    // Paths in the component (panic locations) name the sources, not where
    // this machine keeps them, so the same commit builds the same bytes
    // (and sha256) in any checkout.
    let mut remap = vec![format!("--remap-path-prefix={}=/leasedb", root.display())];
    if let Some(home) = env::var_os("CARGO_HOME")
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo").into_os_string()))
    {
        remap.push(format!(
            "--remap-path-prefix={}=/cargo",
            PathBuf::from(home).display()
        ));
    }
    cmd.env("CARGO_ENCODED_RUSTFLAGS", remap.join("\x1f"));
    // clang-19 builds SQLite for wasm (the flags: `SQLITE_WASM_CFLAGS`).
    set_default(&mut cmd, "CC_wasm32_wasip2", "clang-19");
    set_default(&mut cmd, "AR_wasm32_wasip2", "llvm-ar-19");
    set_default(&mut cmd, "CFLAGS_wasm32_wasip2", SQLITE_WASM_CFLAGS);
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
