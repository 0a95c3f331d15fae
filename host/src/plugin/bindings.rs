//! The only `bindgen!` of the host: Rust types and traits generated from `wit/` (package
//! `ruqi:executor@0.1.0`, world `plugin`). Host imports and guest exports are async so a
//! capability call (a script, a network request) never blocks a runtime thread.

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
    imports: { default: async },
    exports: { default: async },
});

/// The WIT package version this host speaks (`ruqi:executor@…`).
pub const WIT_VERSION: &str = "0.1.0";
