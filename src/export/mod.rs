//! Stage 4: pure renderers over `model` data. No I/O, no knowledge of how data was read.

pub mod api;
pub mod exposition;
pub mod families;
pub mod prometheus;
pub mod resource_metrics;
pub mod snapshot_json;
pub mod summary;
pub mod top;
pub mod ui;
