//! Real cgroup v2 in a qemu VM (placeholder, being written).
