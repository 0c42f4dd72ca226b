//! Detects how cgroups are mounted under a root directory, by file presence only (no statfs
//! magic), so a plain fixture directory is detected exactly like `/sys/fs/cgroup`.
//! Knows nothing about individual cgroups or their stats.

use super::Error;
use crate::model::CgroupVersion;
use std::path::{Path, PathBuf};

/// Directories of the v1 controllers cgscope reads. Co-mounted controllers
/// (`cpu,cpuacct`) point at the same directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct V1Dirs {
    pub cpu: Option<PathBuf>,
    pub cpuacct: Option<PathBuf>,
    pub memory: Option<PathBuf>,
    pub pids: Option<PathBuf>,
    pub blkio: Option<PathBuf>,
}

impl V1Dirs {
    fn is_empty(&self) -> bool {
        self.all().next().is_none()
    }

    /// Every distinct controller directory, in a fixed order.
    pub fn all(&self) -> impl Iterator<Item = &PathBuf> {
        let mut seen: Vec<&PathBuf> = Vec::with_capacity(5);
        [
            &self.pids,
            &self.cpu,
            &self.cpuacct,
            &self.memory,
            &self.blkio,
        ]
        .into_iter()
        .flatten()
        .filter(move |d| {
            if seen.contains(d) {
                false
            } else {
                seen.push(d);
                true
            }
        })
    }
}

/// Where each controller lives under the given root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The root the layout was detected under (`--cgroup-root`).
    pub root: PathBuf,
    pub version: CgroupVersion,
    /// v1 controller directories (empty on v2).
    pub v1: V1Dirs,
    /// The unified (v2) hierarchy: the root itself on v2, usually `<root>/unified` on hybrid.
    pub unified: Option<PathBuf>,
}

impl Layout {
    /// Detects the layout under `root`:
    /// - `root/cgroup.controllers` exists: v2, the root is the unified hierarchy;
    /// - v1 controller directories (`cpu`, `cpuacct`, `cpu,cpuacct`, `memory`, `pids`,
    ///   `blkio`) exist, plus `root/unified/cgroup.controllers`: hybrid (systemd's layout);
    /// - v1 controller directories alone: v1.
    pub fn detect(root: &Path) -> Result<Layout, Error> {
        let entries = std::fs::read_dir(root).map_err(|source| Error::Unreadable {
            path: root.to_path_buf(),
            source,
        })?;
        if root.join("cgroup.controllers").is_file() {
            return Ok(Layout {
                root: root.to_path_buf(),
                version: CgroupVersion::V2,
                v1: V1Dirs::default(),
                unified: Some(root.to_path_buf()),
            });
        }
        // A controller mount is never empty; an empty directory merely named like one (a
        // `cpu,cpuacct` made on the tmpfs) would otherwise win the sort below and hide the
        // real mount.
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| {
                std::fs::read_dir(e.path()).is_ok_and(|mut listing| listing.next().is_some())
            })
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        // Real mounts come before the `cpu -> cpu,cpuacct` style symlinks only by luck of
        // readdir order; sorting makes the choice deterministic (and they agree anyway).
        names.sort();
        let mut v1 = V1Dirs::default();
        for name in &names {
            for controller in name.split(',') {
                let slot = match controller {
                    "cpu" => &mut v1.cpu,
                    "cpuacct" => &mut v1.cpuacct,
                    "memory" => &mut v1.memory,
                    "pids" => &mut v1.pids,
                    "blkio" => &mut v1.blkio,
                    _ => continue,
                };
                if slot.is_none() {
                    *slot = Some(root.join(name));
                }
            }
        }
        let unified = ["unified", "cgroup2"]
            .iter()
            .map(|n| root.join(n))
            .find(|p| p.join("cgroup.controllers").is_file());
        match (v1.is_empty(), unified) {
            (false, unified @ Some(_)) => Ok(Layout {
                root: root.to_path_buf(),
                version: CgroupVersion::Hybrid,
                v1,
                unified,
            }),
            (false, None) => Ok(Layout {
                root: root.to_path_buf(),
                version: CgroupVersion::V1,
                v1,
                unified: None,
            }),
            (true, Some(unified)) => Ok(Layout {
                root: root.to_path_buf(),
                version: CgroupVersion::V2,
                v1,
                unified: Some(unified),
            }),
            (true, None) => Err(Error::UnknownLayout {
                path: root.to_path_buf(),
            }),
        }
    }

    /// The directory whose tree lists cgroups: every v1 controller tree, or the unified one.
    pub fn walk_roots(&self) -> Vec<&Path> {
        match self.version {
            CgroupVersion::V2 => self.unified.iter().map(PathBuf::as_path).collect(),
            CgroupVersion::V1 | CgroupVersion::Hybrid => {
                self.v1.all().map(PathBuf::as_path).collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "").unwrap();
    }

    #[test]
    fn v2_is_detected_by_cgroup_controllers_at_the_root() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("cgroup.controllers"));
        let layout = Layout::detect(dir.path()).unwrap();
        assert_eq!(layout.version, CgroupVersion::V2);
        assert_eq!(layout.unified.as_deref(), Some(dir.path()));
    }

    #[test]
    fn separate_cpu_and_cpuacct_mounts_are_found() {
        let dir = tempfile::tempdir().unwrap();
        for c in ["cpu", "cpuacct", "memory", "pids", "blkio", "systemd"] {
            touch(&dir.path().join(c).join("cgroup.procs"));
        }
        let layout = Layout::detect(dir.path()).unwrap();
        assert_eq!(layout.version, CgroupVersion::V1);
        assert_eq!(layout.v1.cpu, Some(dir.path().join("cpu")));
        assert_eq!(layout.v1.cpuacct, Some(dir.path().join("cpuacct")));
        assert_eq!(layout.walk_roots().len(), 5);
    }

    #[test]
    fn comounted_cpu_cpuacct_and_a_unified_mount_is_hybrid() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("cpu,cpuacct/cgroup.procs"));
        touch(&dir.path().join("memory/cgroup.procs"));
        touch(&dir.path().join("unified/cgroup.controllers"));
        let layout = Layout::detect(dir.path()).unwrap();
        assert_eq!(layout.version, CgroupVersion::Hybrid);
        assert_eq!(layout.v1.cpu, layout.v1.cpuacct);
        assert_eq!(layout.walk_roots().len(), 2);
        assert_eq!(layout.unified, Some(dir.path().join("unified")));
    }

    #[test]
    fn an_empty_directory_named_like_a_controller_does_not_hide_the_mount() {
        let dir = tempfile::tempdir().unwrap();
        for c in ["cpu", "cpuacct", "memory"] {
            touch(&dir.path().join(c).join("cgroup.procs"));
        }
        // Sorts before `cpuacct`, and would be taken for it were it not empty.
        std::fs::create_dir(dir.path().join("cpu,cpuacct")).unwrap();
        let layout = Layout::detect(dir.path()).unwrap();
        assert_eq!(layout.v1.cpu, Some(dir.path().join("cpu")));
        assert_eq!(layout.v1.cpuacct, Some(dir.path().join("cpuacct")));
    }

    #[test]
    fn an_empty_or_missing_root_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Layout::detect(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no cgroup hierarchy"), "{err}");
        let err = Layout::detect(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read"), "{err}");
    }
}
