//! Container identity types (being written).
