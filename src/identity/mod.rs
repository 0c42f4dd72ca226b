//! Stage 2: which container or pod owns a cgroup. Pure path rules decide ownership; the
//! runtime clients only add metadata into a cache that identification reads. Never reads
//! cgroup files, and makes no runtime call while identifying.

pub mod containerd;
pub mod containerd_api;
pub mod docker;
pub mod path_rules;
pub mod sources;
pub mod store;
pub mod watch;

use crate::model::container::Runtime;
use thiserror::Error;

pub use store::MetadataStore;

/// Why a runtime could not be asked.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RuntimeError {
    #[error("{} is unreachable: {detail}", runtime.as_str())]
    Unreachable { runtime: Runtime, detail: String },
    #[error("{} answered unexpectedly: {detail}", runtime.as_str())]
    Protocol { runtime: Runtime, detail: String },
    #[error("{} socket {path} exists but is not a unix socket", runtime.as_str())]
    NotASocket {
        runtime: Runtime,
        path: std::path::PathBuf,
    },
}

use crate::model::container::PathIdentity;
use crate::model::metadata::CgroupIdentity;
use crate::model::{CgroupPath, Snapshot};

/// Who owns `path`: path rules first; metadata from the store only (no runtime call). A
/// path no rule knows may still be a container whose runtime reported that exact path.
pub fn identify(path: &CgroupPath, store: &MetadataStore) -> Option<CgroupIdentity> {
    match path_rules::identify(path) {
        Some(PathIdentity::Container(mut c)) => {
            let found = store.lookup(c.id.as_str());
            // The Kubernetes cgroupfs driver's paths do not name the runtime; the runtime
            // that knows the id does.
            if c.runtime.is_none() {
                c.runtime = found.as_ref().map(|(source, _)| *source);
            }
            let metadata = found.map(|(_, meta)| meta);
            Some(CgroupIdentity {
                path: PathIdentity::Container(c),
                metadata,
                pod_names: None,
            })
        }
        Some(PathIdentity::Pod(pod)) => {
            let pod_names = store.pod(pod.uid.as_str());
            Some(CgroupIdentity {
                path: PathIdentity::Pod(pod),
                metadata: None,
                pod_names,
            })
        }
        None => {
            let meta = store.by_cgroup_path(path.as_str())?;
            let runtime = store.lookup(&meta.id).map(|(source, _)| source);
            Some(CgroupIdentity {
                path: PathIdentity::Container(crate::model::container::ContainerRef {
                    runtime,
                    id: crate::model::container::ContainerId::new(meta.id.clone()),
                    pod: None,
                }),
                metadata: Some(meta),
                pod_names: None,
            })
        }
    }
}

/// Fills `identity` on every cgroup of a snapshot, then picks which cgroup reports each
/// network namespace (that needs the identities: sandbox flags, creation times).
pub fn identify_snapshot(snapshot: &mut Snapshot, store: &MetadataStore) {
    for sample in &mut snapshot.cgroups {
        sample.identity = identify(&sample.path, store);
    }
    crate::model::network::assign_namespace_reporters(&mut snapshot.cgroups);
}
