//! The host's `bindgen!`s: Rust types and traits generated from `wit/`. At the root, the
//! contract this host speaks (package `ruqi:executor@0.3.0`, world `plugin`); in [`v0_2`] and
//! [`v0_1`], the frozen previous versions (`wit/v0.2`, `wit/v0.1`) so plugins built for them
//! still load. Host imports and guest exports are async so a capability call (a script, a
//! network request) never blocks a runtime thread.

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
    imports: { default: async },
    exports: { default: async },
});

/// The WIT package version this host speaks (`ruqi:executor@…`).
pub const WIT_VERSION: &str = "0.3.0";

/// The previous contract, `ruqi:executor@0.2.0`: no `redis-pipeline` in `host`.
pub mod v0_2 {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../wit/v0.2",
        imports: { default: async },
        exports: { default: async },
    });

    /// The version of this contract.
    pub const WIT_VERSION: &str = "0.2.0";
}

/// The first contract, `ruqi:executor@0.1.0`: a `run-request` without `params`.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../wit/v0.1",
        imports: { default: async },
        exports: { default: async },
    });

    /// The version of this contract.
    pub const WIT_VERSION: &str = "0.1.0";
}
