//! Path rules (being written).
