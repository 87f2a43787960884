//! Signoff's server: configuration, start-up and serving. `main.rs` only wires these together.

pub mod config;
pub mod serve;
pub mod startup;
pub mod telemetry;
