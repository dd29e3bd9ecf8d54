//! Builds the shipped plugin component for `wasm32-wasip2` and emits its path.
//! (Test fixtures are built by `plugin/fixtures`, which only tests depend on,
//! so building the host does not build them.)

#[path = "wasm_build.rs"]
mod wasm_build;

fn main() {
    let root = wasm_build::workspace_root();
    wasm_build::watch(&root);
    wasm_build::build_into_out_dir(
        &root,
        "wasm-plugin",
        "",
        "leasedb_plugin.wasm",
        "LEASEDB_PLUGIN_WASM",
    );
}
