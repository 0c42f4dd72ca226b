//! The fixture scenarios as tests read them: the list of scenario directories, their roots,
//! their recorded runtime answers, and one sampler tick over them (the fixture sampler).

use super::fixtures_dir;
use cgscope::identity::MetadataStore;
use cgscope::model::Tick;
use cgscope::sampler::filter::CgroupFilter;
use cgscope::sampler::{Sampler, SamplerConfig};
use cgscope::scan::{Roots, Scanner};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every `tests/fixtures/<scenario>` that holds a captured cgroup tree, sorted.
pub fn scenarios() -> Vec<PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("cgroup").is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 3,
        "expected at least the v1, v2 and hybrid scenarios"
    );
    dirs
}

/// The roots of a scenario (or of a capture written like one).
pub fn roots_of(dir: &Path) -> Roots {
    let id = dir.join("machine-id");
    Roots {
        cgroup_root: dir.join("cgroup"),
        proc_root: dir.join("proc"),
        machine_id_file: id.exists().then_some(id),
    }
}

/// A store holding the runtime answers recorded with the capture, when there are any.
pub fn recorded_runtime(dir: &Path) -> MetadataStore {
    let store = MetadataStore::new();
    let file = dir.join("runtime.json");
    if file.exists() {
        store.load(serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap());
    }
    store
}

/// One sampler tick of a scenario at time 0, with its recorded runtime answers.
pub fn tick_of(dir: &Path) -> Tick {
    let config = SamplerConfig {
        interval: Duration::from_secs(1),
        history: Duration::from_secs(120),
        history_points: 600,
        filter: CgroupFilter::default(),
    };
    let scanner = Scanner::open(&roots_of(dir)).unwrap();
    Sampler::new(scanner, recorded_runtime(dir), config).sample_once(0)
}
