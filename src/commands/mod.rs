//! Composition roots: the only place that wires stages together and the only users of
//! `anyhow` besides `main.rs`.

pub mod capture;
mod runtime;
pub mod serve;
pub mod snapshot;
pub mod top;
