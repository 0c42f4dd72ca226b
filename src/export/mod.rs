//! Stage 4: pure renderers over `model` data. No I/O, no knowledge of how data was read.

pub mod snapshot_json;
