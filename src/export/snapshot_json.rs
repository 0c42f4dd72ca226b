//! The `cgscope snapshot` JSON document: a versioned envelope around the model's snapshot.
//! Field names and units are the documented contract (README, "Snapshot JSON").

use crate::model::Snapshot;
use serde::Serialize;

/// Bumped on any incompatible change of the document's shape.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct Envelope<'a> {
    schema_version: u32,
    cgscope_version: &'a str,
    #[serde(flatten)]
    snapshot: &'a Snapshot,
}

/// Renders a snapshot as pretty-printed JSON (ends with a newline).
pub fn render(snapshot: &Snapshot) -> String {
    let envelope = Envelope {
        schema_version: SCHEMA_VERSION,
        cgscope_version: env!("CARGO_PKG_VERSION"),
        snapshot,
    };
    // Serialising plain structs of numbers and strings into a String cannot fail.
    let mut out = serde_json::to_string_pretty(&envelope).unwrap_or_default();
    out.push('\n');
    out
}
