//! RuQi (如期): a job scheduler serving RuQi's HTTP API, running each job's runs in WASI
//! executor plugins, persisting to SQLite (default) or MySQL.
//!
//! Read `ARCHITECTURE.md` at the repository root for the map. In one line: `api` turns
//! requests into store changes; `scheduler` claims due runs from the `store`; `dispatch`
//! runs them through a `plugin` and records the outcome.

pub mod api;
pub mod app;
pub mod apply;
pub mod calendar;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dispatch;
pub mod followup;
pub mod metrics;
pub mod model;
pub mod plugin;
pub mod run;
pub mod scaffold;
pub mod scheduler;
pub mod store;
pub mod trigger;
pub mod watch;
