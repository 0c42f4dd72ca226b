//! Stage 2: which container or pod owns a cgroup. Pure path rules first, then cached runtime
//! metadata. Never reads cgroup files.

pub mod path_rules;
