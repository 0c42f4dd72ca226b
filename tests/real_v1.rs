//! Real cgroup v1 on this host (placeholder, being written).
