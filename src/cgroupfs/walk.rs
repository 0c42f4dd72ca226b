//! Enumerates cgroup directories under one or more hierarchy roots, keyed by their path
//! relative to the root (the v1 union of controller trees). Vanished directories are skipped.

use crate::model::CgroupPath;
use std::collections::BTreeSet;
use std::path::Path;

/// Every cgroup under any of `roots`, as a sorted set of relative paths (root included).
pub fn list_cgroups(roots: &[&Path]) -> BTreeSet<CgroupPath> {
    let mut found = BTreeSet::new();
    for root in roots {
        if !root.is_dir() {
            continue;
        }
        let mut stack = vec![String::new()];
        while let Some(rel) = stack.pop() {
            let dir = if rel.is_empty() {
                root.to_path_buf()
            } else {
                root.join(&rel)
            };
            // A cgroup removed between listing its parent and reading it is not an error.
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            found.insert(CgroupPath::from_relative(&rel));
            for entry in entries.flatten() {
                let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
                if !is_dir {
                    continue;
                }
                if let Ok(name) = entry.file_name().into_string() {
                    stack.push(if rel.is_empty() {
                        name
                    } else {
                        format!("{rel}/{name}")
                    });
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_trees_are_merged_by_relative_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("cpu/docker/a")).unwrap();
        std::fs::create_dir_all(dir.path().join("memory/docker/a")).unwrap();
        std::fs::create_dir_all(dir.path().join("memory/only-mem")).unwrap();
        let cpu = dir.path().join("cpu");
        let mem = dir.path().join("memory");
        let got: Vec<String> = list_cgroups(&[&cpu, &mem, &dir.path().join("gone")])
            .into_iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(got, ["/", "/docker", "/docker/a", "/only-mem"]);
    }
}
