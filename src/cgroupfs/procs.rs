//! The member pids of one cgroup, read on demand from its `cgroup.procs`: the unified tree on
//! v2, the first v1 controller tree holding the cgroup on v1 and hybrid. Knows nothing of
//! containers or of /proc: it hands out pids, and what runs under them is another stage's concern.

use super::format::{self, ParseError};
use super::Layout;
use crate::files::FileReader;
use crate::model::{CgroupPath, CgroupVersion};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A `cgroup.procs` that exists but cannot be read.
#[derive(Debug, Error)]
#[error("cannot read {path}: {source}")]
pub struct MembersError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// The processes listed by one cgroup (its own members, not its children's).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Members {
    /// Distinct pids in ascending order, at most the `max` asked for (never 0).
    pub pids: Vec<u64>,
    /// Processes listed (a count): distinct pids, those beyond `max` included, plus those
    /// outside the reader's pid namespace.
    pub total: u64,
    /// True when pids beyond `max` were left out.
    pub truncated: bool,
}

/// Parses `cgroup.procs`: one pid per line. v1 documents the list as neither sorted nor free
/// of duplicates (Documentation/admin-guide/cgroup-v1/cgroups.rst, "cgroup.procs"), so it is
/// sorted and deduplicated here. v2 prints `0` for each process outside the reader's pid
/// namespace: those count in `total` but have no pid to read. Keeps the `max` lowest pids; a
/// line that is not a pid is skipped and the first such error returned beside the rest.
pub fn parse_procs(bytes: &[u8], max: usize) -> (Members, Option<ParseError>) {
    let mut first_err = None;
    let mut unseen: u64 = 0;
    let mut pids: Vec<u64> = format::lines(bytes)
        .filter_map(|line| match format::parse_u64(line) {
            Ok(0) => {
                unseen += 1;
                None
            }
            Ok(pid) => Some(pid),
            Err(e) => {
                first_err.get_or_insert(e);
                None
            }
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    let total = (pids.len() as u64).saturating_add(unseen);
    let truncated = pids.len() > max;
    pids.truncate(max);
    (
        Members {
            pids,
            total,
            truncated,
        },
        first_err,
    )
}

/// The members of `cgroup` under `layout`, at most `max` pids of them. `Ok(None)` when no
/// tree has the cgroup any more (it was removed since it was listed).
pub fn member_pids(
    layout: &Layout,
    cgroup: &CgroupPath,
    reader: &mut FileReader,
    max: usize,
) -> Result<Option<Members>, MembersError> {
    let dirs: Vec<&Path> = match layout.version {
        CgroupVersion::V2 => layout.unified.iter().map(PathBuf::as_path).collect(),
        // Like the sweep's member counts: a v1 cgroup may exist in some controller trees
        // only, and the first that has it answers.
        CgroupVersion::V1 | CgroupVersion::Hybrid => {
            layout.v1.all().map(PathBuf::as_path).collect()
        }
    };
    let mut failure = None;
    for dir in dirs {
        let mut path = dir.to_path_buf();
        let rel = cgroup.fs_relative();
        if !rel.is_empty() {
            path.push(rel);
        }
        path.push("cgroup.procs");
        match reader.read(&path) {
            Ok(Some(bytes)) => {
                let (members, err) = parse_procs(bytes, max);
                if let Some(err) = err {
                    tracing::warn!(path = %path.display(), error = %err, "skipping lines of cgroup.procs that are not pids");
                }
                return Ok(Some(members));
            }
            Ok(None) => {}
            // Another tree may still answer; report the failure only if none does.
            Err(source) => failure = Some(MembersError { path, source }),
        }
    }
    match failure {
        Some(err) => Err(err),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroupfs::layout::V1Dirs;
    use proptest::prelude::*;

    #[test]
    fn procs_are_sorted_deduplicated_and_capped() {
        let (m, err) = parse_procs(b"42\n7\n42\n1000\n", 10);
        assert_eq!(m.pids, vec![7, 42, 1000]);
        assert_eq!(m.total, 3);
        assert_eq!(err, None);
        assert!(!m.truncated);
        let (m, _) = parse_procs(b"5\n4\n3\n", 2);
        assert_eq!((m.pids, m.total, m.truncated), (vec![3, 4], 3, true));
    }

    #[test]
    fn processes_outside_our_pid_namespace_count_but_are_not_pids() {
        let (m, err) = parse_procs(b"0\n0\n8\n", 10);
        assert_eq!(
            (m.pids, m.total, m.truncated, err),
            (vec![8], 3, false, None)
        );
    }

    #[test]
    fn an_empty_cgroup_has_no_members_and_no_error() {
        assert_eq!(parse_procs(b"", 10), (Members::default(), None));
        assert_eq!(parse_procs(b"\n", 10), (Members::default(), None));
    }

    #[test]
    fn a_garbled_line_spoils_only_itself() {
        let (m, err) = parse_procs(b"12\nx1\n-3\n99999999999999999999999\n13\n", 10);
        assert_eq!(m.pids, vec![12, 13]);
        assert_eq!(err, Some(ParseError::NotANumber));
    }

    fn tree(dirs: &[&str]) -> (tempfile::TempDir, Layout) {
        let root = tempfile::tempdir().unwrap();
        for d in dirs {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        let layout = Layout {
            root: root.path().to_path_buf(),
            version: CgroupVersion::V1,
            v1: V1Dirs {
                cpu: Some(root.path().join("cpu")),
                cpuacct: Some(root.path().join("cpuacct")),
                memory: Some(root.path().join("memory")),
                pids: Some(root.path().join("pids")),
                blkio: None,
            },
            unified: None,
        };
        (root, layout)
    }

    #[test]
    fn v1_members_come_from_the_first_tree_holding_the_cgroup() {
        let (root, layout) = tree(&["pids", "cpu/a", "memory/a", "memory/b"]);
        std::fs::write(root.path().join("cpu/a/cgroup.procs"), "3\n1\n").unwrap();
        std::fs::write(root.path().join("memory/a/cgroup.procs"), "9\n").unwrap();
        std::fs::write(root.path().join("memory/b/cgroup.procs"), "5\n").unwrap();
        std::fs::write(root.path().join("pids/cgroup.procs"), "1\n2\n").unwrap();
        let mut reader = FileReader::new();
        let read = |r: &mut FileReader, p: &str| {
            member_pids(&layout, &CgroupPath::from_relative(p), r, 100)
                .unwrap()
                .map(|m| m.pids)
        };
        assert_eq!(read(&mut reader, "a"), Some(vec![1, 3]));
        assert_eq!(read(&mut reader, "b"), Some(vec![5]));
        assert_eq!(read(&mut reader, "/"), Some(vec![1, 2]));
        assert_eq!(read(&mut reader, "gone"), None);
    }

    #[test]
    fn v2_members_come_from_the_unified_tree() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("svc")).unwrap();
        std::fs::write(root.path().join("svc/cgroup.procs"), "77\n").unwrap();
        let layout = Layout {
            root: root.path().to_path_buf(),
            version: CgroupVersion::V2,
            v1: V1Dirs::default(),
            unified: Some(root.path().to_path_buf()),
        };
        let m = member_pids(
            &layout,
            &CgroupPath::from_relative("svc"),
            &mut FileReader::new(),
            10,
        )
        .unwrap();
        assert_eq!(m.map(|m| m.pids), Some(vec![77]));
    }

    proptest! {
        #[test]
        fn parse_procs_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256), max in 0usize..8) {
            let (m, _) = parse_procs(&bytes, max);
            prop_assert!(m.pids.len() <= max);
            prop_assert!(m.pids.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(m.pids.len() as u64 <= m.total);
            if m.truncated {
                prop_assert_eq!(m.pids.len(), max);
            }
        }

        #[test]
        fn listed_pids_round_trip(pids in proptest::collection::vec(any::<u64>(), 0..50)) {
            let text: String = pids.iter().map(|p| format!("{p}\n")).collect();
            let (m, err) = parse_procs(text.as_bytes(), usize::MAX);
            let mut want: Vec<u64> = pids.iter().copied().filter(|p| *p != 0).collect();
            let zeros = (pids.len() - want.len()) as u64;
            want.sort_unstable();
            want.dedup();
            prop_assert_eq!(err, None);
            prop_assert_eq!(m.total, want.len() as u64 + zeros);
            prop_assert_eq!(m.pids, want);
        }
    }
}
