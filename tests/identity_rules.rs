//! Path rules table test (being written).
