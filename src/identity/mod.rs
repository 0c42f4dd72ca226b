//! Stage 2: which container or pod owns a cgroup. Pure path rules decide ownership; the
//! runtime clients only add metadata into a cache that identification reads. Never reads
//! cgroup files, and makes no runtime call while identifying.

pub mod containerd;
pub mod docker;
pub mod path_rules;
pub mod store;
pub mod watch;

use crate::model::metadata::MetadataSource;
use thiserror::Error;

pub use store::MetadataStore;

/// Why a runtime could not be asked.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RuntimeError {
    #[error("{} is unreachable: {detail}", runtime.as_str())]
    Unreachable { runtime: MetadataSource, detail: String },
    #[error("{} answered unexpectedly: {detail}", runtime.as_str())]
    Protocol { runtime: MetadataSource, detail: String },
    #[error("{} socket {path} exists but is not a unix socket", runtime.as_str())]
    NotASocket { runtime: MetadataSource, path: std::path::PathBuf },
}
