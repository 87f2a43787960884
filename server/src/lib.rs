//! Signoff's server: configuration, start-up and serving. `main.rs` only wires these together.

// The page's view type (signoff-leptos's account panel) is deep: the release build computes its
// layout past the default query depth of 128.
#![recursion_limit = "256"]

pub mod config;
pub mod serve;
pub mod startup;
pub mod telemetry;
