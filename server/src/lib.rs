//! Signoff's server: configuration, start-up and serving. `main.rs` only wires these together.

pub mod body_deadline;
pub mod config;
pub mod forms;
pub mod hardening;
pub mod serve;
pub mod startup;
pub mod telemetry;
