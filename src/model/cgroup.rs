//! Cgroup paths (normalised, "/"-rooted, relative to the hierarchy root) and the layout vocabulary.
//! Knows nothing about where the hierarchy is mounted.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How the host mounts cgroups, in the kernel's own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupVersion {
    /// Only v1 controller hierarchies.
    V1,
    /// Only the unified v2 hierarchy.
    V2,
    /// v1 controllers plus a unified mount (usually `<root>/unified`).
    Hybrid,
}

impl fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
            CgroupVersion::Hybrid => "hybrid",
        })
    }
}

/// A cgroup's path inside its hierarchy, always starting with `/` (`/` is the root cgroup).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CgroupPath(#[serde(deserialize_with = "normalised")] String);

/// Read paths go through [`CgroupPath::from_relative`] too, so no input makes one that leaves
/// the tree.
fn normalised<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let raw = String::deserialize(d)?;
    Ok(CgroupPath::from_relative(&raw).0)
}

impl CgroupPath {
    /// The root cgroup, `/`.
    pub fn root() -> Self {
        CgroupPath("/".to_owned())
    }

    /// Builds a path from its components relative to the hierarchy root.
    /// Empty, `.` and `..` components are dropped, so the result never leaves the tree.
    pub fn from_relative(rel: &str) -> Self {
        let mut out = String::with_capacity(rel.len() + 1);
        for part in rel.split('/') {
            if part.is_empty() || part == "." || part == ".." {
                continue;
            }
            out.push('/');
            out.push_str(part);
        }
        if out.is_empty() {
            out.push('/');
        }
        CgroupPath(out)
    }

    /// The path as text, e.g. `/docker/<id>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path without its leading `/`, for joining under a mount point (`""` for the root).
    pub fn relative(&self) -> &str {
        self.0.trim_start_matches('/')
    }
}

impl fmt::Display for CgroupPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_normalised_and_cannot_escape_the_tree() {
        assert_eq!(CgroupPath::from_relative("").as_str(), "/");
        assert_eq!(
            CgroupPath::from_relative("docker//abc/").as_str(),
            "/docker/abc"
        );
        assert_eq!(CgroupPath::from_relative("../../etc").as_str(), "/etc");
        assert_eq!(CgroupPath::from_relative("/a/./b").relative(), "a/b");
    }
}
