//! The only `bindgen!`: host bindings for world `leasedb:plugin/plugin`,
//! synchronous (calls run on the caller's thread, bounded by the epoch deadline).

wasmtime::component::bindgen!({
    path: "../wit/since_v0.1",
    world: "plugin",
    // Callers (and the conformance tests) compare answers directly.
    additional_derives: [PartialEq, Eq],
});
