//! Which cgroups are reported: `--include`/`--exclude` globs on the cgroup path, and whether
//! to keep only containers and pods (cAdvisor reports every cgroup; so do we by default).

use crate::model::CgroupSample;
use globset::{GlobSet, GlobSetBuilder};

/// The reporting filter.
#[derive(Debug, Clone, Default)]
pub struct CgroupFilter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
    only_containers: bool,
}

/// A glob that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid cgroup glob {glob:?}: {reason}")]
pub struct FilterError {
    pub glob: String,
    pub reason: String,
}

fn build(globs: &[String]) -> Result<Option<GlobSet>, FilterError> {
    if globs.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for g in globs {
        // `*` must not cross `/`, so `/docker/*` means direct children only; `**` crosses.
        let glob = globset::GlobBuilder::new(g)
            .literal_separator(true)
            .build()
            .map_err(|e| FilterError {
                glob: g.clone(),
                reason: e.kind().to_string(),
            })?;
        builder.add(glob);
    }
    builder.build().map(Some).map_err(|e| FilterError {
        glob: globs.join(","),
        reason: e.to_string(),
    })
}

impl CgroupFilter {
    pub fn new(
        include: &[String],
        exclude: &[String],
        only_containers: bool,
    ) -> Result<Self, FilterError> {
        Ok(CgroupFilter {
            include: build(include)?,
            exclude: build(exclude)?,
            only_containers,
        })
    }

    /// True when the sample is reported.
    pub fn keeps(&self, sample: &CgroupSample) -> bool {
        let path = sample.path.as_str();
        if self.include.as_ref().is_some_and(|g| !g.is_match(path)) {
            return false;
        }
        if self.exclude.as_ref().is_some_and(|g| g.is_match(path)) {
            return false;
        }
        !self.only_containers || sample.identity.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CgroupPath, CgroupStats};

    fn sample(path: &str) -> CgroupSample {
        CgroupSample {
            path: CgroupPath::from_relative(path),
            identity: None,
            stats: CgroupStats::default(),
        }
    }

    #[test]
    fn include_and_exclude_globs_match_whole_paths() {
        let f = CgroupFilter::new(
            &["/docker/*".into(), "/".into()],
            &["/docker/bad*".into()],
            false,
        )
        .unwrap();
        assert!(f.keeps(&sample("docker/abc")));
        assert!(f.keeps(&sample("")));
        assert!(!f.keeps(&sample("docker/badone")));
        assert!(!f.keeps(&sample("docker/abc/child")), "* does not cross /");
        assert!(!f.keeps(&sample("system.slice")));
        assert!(CgroupFilter::new(&["/[".into()], &[], false).is_err());
    }

    #[test]
    fn only_containers_drops_unidentified_cgroups() {
        let f = CgroupFilter::new(&[], &[], true).unwrap();
        assert!(!f.keeps(&sample("system.slice")));
    }
}
