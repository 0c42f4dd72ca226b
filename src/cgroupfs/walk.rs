//! Enumerates cgroup directories under one or more hierarchy roots, keyed by their path
//! relative to the root (the v1 union of controller trees). Vanished directories are skipped;
//! names that are not UTF-8 are listed under their escaped form.

use crate::model::cgroup::escape_name;
use crate::model::CgroupPath;
use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Every cgroup under any of `roots`, as a sorted set of relative paths (root included).
pub fn list_cgroups(roots: &[&Path]) -> BTreeSet<CgroupPath> {
    let mut found = BTreeSet::new();
    for root in roots {
        if !root.is_dir() {
            continue;
        }
        // (directory as the filesystem names it, relative path as text)
        let mut stack: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
        while let Some((dir, rel)) = stack.pop() {
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
                let name = entry.file_name();
                let text = escape_name(name.as_bytes());
                let child = if rel.is_empty() {
                    text.into_owned()
                } else {
                    format!("{rel}/{text}")
                };
                stack.push((entry.path(), child));
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

    #[test]
    fn names_that_are_not_utf8_are_listed_escaped() {
        use std::ffi::OsStr;
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join(OsStr::from_bytes(b"odd-\xff\xfe"));
        std::fs::create_dir_all(odd.join("inner")).unwrap();
        let got: Vec<String> = list_cgroups(&[dir.path()])
            .into_iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(got, ["/", r"/odd-\xff\xfe", r"/odd-\xff\xfe/inner"]);
    }
}
