//! The metadata cache: what each runtime last said about its containers, keyed by container
//! id, plus per-runtime connection state and API call counts. Runtime watchers write it on
//! events and resyncs; identifying a cgroup only reads it (zero API calls per tick).

use super::sources::SOURCES;
use crate::model::container::Runtime;
use crate::model::metadata::{ContainerMeta, KubernetesNames, RecordedMeta};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long an id the runtimes did not know stays negatively cached.
const NEGATIVE_TTL: Duration = Duration::from_secs(60);

/// Connection state and call count of one runtime.
#[derive(Debug, Default)]
pub struct SourceState {
    connected: AtomicBool,
    api_calls: AtomicU64,
    errors: AtomicU64,
}

impl SourceState {
    /// True while the last call to the runtime succeeded.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
    /// Runtime API calls made since start (each list, inspect, version or subscribe).
    pub fn api_calls(&self) -> u64 {
        self.api_calls.load(Ordering::Relaxed)
    }
    /// Failed calls or dropped connections since start.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
    pub(crate) fn count_call(&self) {
        self.api_calls.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Relaxed);
    }
    pub(crate) fn count_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
struct Entries {
    by_id: HashMap<String, (Runtime, Arc<ContainerMeta>)>,
    /// Ids looked up and not known to any runtime, with when we first missed them.
    misses: HashMap<String, Instant>,
    /// Pod names by pod uid, from any container of the pod (rebuilt on every write).
    pods: HashMap<String, KubernetesNames>,
    /// Container id by the cgroup path its runtime reported (containerd's OCI spec).
    by_cgroup_path: HashMap<String, String>,
}

impl Entries {
    /// Writes are rare (events, resyncs) and reads are per cgroup per tick, so the
    /// secondary indexes are rebuilt on write.
    fn reindex(&mut self) {
        self.pods.clear();
        self.by_cgroup_path.clear();
        for (id, (_, meta)) in &self.by_id {
            if let Some(k) = &meta.kubernetes {
                if let Some(uid) = &k.pod_uid {
                    let entry = self
                        .pods
                        .entry(uid.clone())
                        .or_insert_with(|| KubernetesNames {
                            pod: k.pod.clone(),
                            namespace: k.namespace.clone(),
                            container: None,
                            pod_uid: Some(uid.clone()),
                            sandbox: false,
                        });
                    entry.pod = entry.pod.clone().or_else(|| k.pod.clone());
                    entry.namespace = entry.namespace.clone().or_else(|| k.namespace.clone());
                }
            }
            if let Some(path) = &meta.cgroup_path {
                self.by_cgroup_path.insert(path.clone(), id.clone());
            }
        }
    }
}

/// Where `runtime` stands in [`SOURCES`]: the lower, the more its records are trusted.
fn precedence(runtime: Runtime) -> usize {
    SOURCES
        .iter()
        .position(|s| s.runtime == runtime)
        .unwrap_or(SOURCES.len())
}

/// Docker's own containers also exist in containerd (namespace `moby`) under the same id;
/// Docker's record has the names and image users know, so the runtime listed first in
/// [`SOURCES`] wins over a later one.
fn insert(entries: &mut Entries, source: Runtime, meta: ContainerMeta) {
    entries.misses.remove(&meta.id);
    let held_by_earlier = entries
        .by_id
        .get(&meta.id)
        .is_some_and(|(held, _)| precedence(*held) < precedence(source));
    if held_by_earlier {
        return;
    }
    entries
        .by_id
        .insert(meta.id.clone(), (source, Arc::new(meta)));
}

/// Shared cache of runtime metadata. Cheap to clone (an `Arc` inside).
#[derive(Debug, Clone, Default)]
pub struct MetadataStore {
    entries: Arc<RwLock<Entries>>,
    /// One state per runtime, indexed by `runtime as usize`.
    states: Arc<[SourceState; Runtime::ALL.len()]>,
}

impl MetadataStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Connection state of one runtime.
    pub fn source(&self, source: Runtime) -> &SourceState {
        &self.states[source as usize]
    }

    /// Metadata for a container id; `None` when no runtime knows it. A miss is remembered
    /// (negative entry) so callers can tell "unknown" from "not asked yet".
    pub fn get(&self, id: &str) -> Option<Arc<ContainerMeta>> {
        self.lookup(id).map(|(_, meta)| meta)
    }

    /// Like [`MetadataStore::get`], also saying which runtime answered.
    pub fn lookup(&self, id: &str) -> Option<(Runtime, Arc<ContainerMeta>)> {
        if let Ok(entries) = self.entries.read() {
            if let Some((source, meta)) = entries.by_id.get(id) {
                return Some((*source, Arc::clone(meta)));
            }
            if entries.misses.contains_key(id) {
                return None;
            }
        }
        if let Ok(mut entries) = self.entries.write() {
            entries
                .misses
                .entry(id.to_owned())
                .or_insert_with(Instant::now);
        }
        None
    }

    /// True when `id` was looked up recently and no runtime knew it.
    pub fn is_known_missing(&self, id: &str) -> bool {
        self.entries
            .read()
            .map(|e| e.misses.get(id).is_some_and(|t| t.elapsed() < NEGATIVE_TTL))
            .unwrap_or(false)
    }

    /// Replaces everything `source` said before with `containers` (a full resync): gone
    /// containers are evicted, negative entries for the new ones dropped.
    pub fn replace_all(&self, source: Runtime, containers: Vec<ContainerMeta>) {
        if let Ok(mut entries) = self.entries.write() {
            entries.by_id.retain(|_, (s, _)| *s != source);
            for meta in containers {
                insert(&mut entries, source, meta);
            }
            entries.misses.retain(|_, t| t.elapsed() < NEGATIVE_TTL);
            entries.reindex();
        }
    }

    /// Adds or refreshes one container (after an event).
    pub fn upsert(&self, source: Runtime, meta: ContainerMeta) {
        if let Ok(mut entries) = self.entries.write() {
            insert(&mut entries, source, meta);
            entries.reindex();
        }
    }

    /// Forgets a container (destroyed).
    pub fn remove(&self, id: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.by_id.remove(id);
            entries.reindex();
        }
    }

    /// Kubernetes pod and namespace of a pod uid (dashed form), from its containers' labels.
    pub fn pod(&self, uid: &str) -> Option<KubernetesNames> {
        self.entries
            .read()
            .ok()
            .and_then(|e| e.pods.get(uid).cloned())
    }

    /// The container whose runtime put it in cgroup `path`, for paths no rule recognises.
    pub fn by_cgroup_path(&self, path: &str) -> Option<Arc<ContainerMeta>> {
        let entries = self.entries.read().ok()?;
        let id = entries.by_cgroup_path.get(path)?;
        entries.by_id.get(id).map(|(_, m)| Arc::clone(m))
    }

    /// Everything known, sorted by id, as `capture` records it.
    pub fn export(&self) -> Vec<RecordedMeta> {
        let mut out: Vec<RecordedMeta> = self
            .entries
            .read()
            .map(|e| {
                e.by_id
                    .values()
                    .map(|(source, meta)| RecordedMeta {
                        source: *source,
                        container: (**meta).clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.container.id.cmp(&b.container.id));
        out
    }

    /// Loads recorded answers (replaces each source's entries), as tests replay them.
    pub fn load(&self, recorded: Vec<RecordedMeta>) {
        for source in SOURCES.iter().map(|s| s.runtime) {
            let containers = recorded
                .iter()
                .filter(|r| r.source == source)
                .map(|r| r.container.clone())
                .collect();
            self.replace_all(source, containers);
        }
    }

    /// Ids currently known from `source`.
    pub fn ids(&self, source: Runtime) -> Vec<String> {
        self.entries
            .read()
            .map(|e| {
                let mut ids: Vec<String> = e
                    .by_id
                    .iter()
                    .filter(|(_, (s, _))| *s == source)
                    .map(|(id, _)| id.clone())
                    .collect();
                ids.sort();
                ids
            })
            .unwrap_or_default()
    }

    /// The record of a container from `source`, if any.
    pub fn get_from(&self, source: Runtime, id: &str) -> Option<Arc<ContainerMeta>> {
        self.entries.read().ok().and_then(|e| {
            e.by_id
                .get(id)
                .filter(|(s, _)| *s == source)
                .map(|(_, m)| Arc::clone(m))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str) -> ContainerMeta {
        ContainerMeta {
            id: id.to_owned(),
            ..ContainerMeta::default()
        }
    }

    #[test]
    fn a_resync_evicts_containers_that_went_away() {
        let store = MetadataStore::new();
        store.replace_all(Runtime::Docker, vec![meta("a"), meta("b")]);
        store.replace_all(Runtime::Containerd, vec![meta("c")]);
        store.replace_all(Runtime::Docker, vec![meta("b")]);
        assert!(store.get("a").is_none());
        assert!(store.get("b").is_some());
        assert!(store.get("c").is_some(), "another runtime's entries stay");
    }

    #[test]
    fn docker_records_win_over_containerd_records_of_the_same_container() {
        let store = MetadataStore::new();
        let mut from_docker = meta("a");
        from_docker.name = Some("web".into());
        store.replace_all(Runtime::Docker, vec![from_docker]);
        store.replace_all(Runtime::Containerd, vec![meta("a")]);
        assert_eq!(store.get("a").unwrap().name.as_deref(), Some("web"));
    }

    #[test]
    fn misses_are_remembered_until_the_runtime_reports_the_container() {
        let store = MetadataStore::new();
        assert!(store.get("x").is_none());
        assert!(store.is_known_missing("x"));
        store.upsert(Runtime::Docker, meta("x"));
        assert!(!store.is_known_missing("x"));
        assert!(store.get("x").is_some());
        store.remove("x");
        assert!(store.get("x").is_none());
    }
}
