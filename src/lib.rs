//! cgscope: a per-node container resource collector.
//!
//! The pipeline runs one way, and `ls src/` shows it:
//! `files` (raw reads) -> `cgroupfs` + `proc` (kernel files to `model` stats) -> `scan`
//! (one sweep: a `model::Snapshot`) -> `identity` (whose cgroup) -> `sampler` (ticks, rates,
//! history) -> `export` (pure renderers) -> `http` / `commands` (transport and wiring).
//! Beside `scan`, `process_list` joins `cgroupfs` and `proc` on demand only (one cgroup's
//! processes for a detail request, never per tick).
//! Upstream stages never call downstream ones; `cgroupfs` never learns what a container is.

#![forbid(unsafe_code)]

pub mod cgroupfs;
pub mod cli;
pub mod commands;

pub mod export;
pub mod files;
pub mod http;
pub mod identity;
pub mod model;
pub mod proc;
pub mod process_list;
pub mod sampler;
pub mod scan;
