//! JSON views of the API (`/api/v1/...`): the wire contract, kept apart from the model so the
//! model can change without breaking clients. Pure functions over a tick.

use crate::model::container::PathIdentity;
use crate::model::metadata::{display_name, CgroupIdentity, KubernetesNames};
use crate::model::{
    CgroupHistory, CgroupSample, CgroupStats, DeviceRates, HistoryPoint, InterfaceRates,
    MachineInfo, ProcessList, Rates, RuntimeStatus, Tick,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// `GET /api/v1/machine`.
#[derive(Debug, Serialize)]
pub struct MachineView<'a> {
    #[serde(flatten)]
    pub machine: &'a MachineInfo,
    pub runtimes: &'a [RuntimeStatus],
    /// Time of the latest sample, ms since the Unix epoch.
    pub sampled_at_unix_ms: u64,
    /// Machine-wide CPU time at that sample, ns (`/proc/stat`, as `docker stats` uses it).
    pub system_cpu_usage_ns: Option<u64>,
}

/// One container or pod (or, under `/cgroups`, any cgroup) with its latest stats.
#[derive(Debug, Serialize)]
pub struct CgroupView<'a> {
    /// Cgroup path inside the hierarchy.
    pub cgroup: &'a str,
    /// `container`, `pod` or `cgroup`.
    pub kind: &'static str,
    pub runtime: Option<&'static str>,
    pub id: Option<&'a str>,
    /// The name a runtime gave a container, or a pod-level cgroup's pod name.
    pub name: Option<&'a str>,
    /// The name to show: `namespace/pod/container` in Kubernetes, else the runtime's name,
    /// the container id or the cgroup path (`model::metadata::display_name`).
    pub display_name: String,
    pub image: Option<&'a str>,
    pub labels: Option<Labels<'a>>,
    pub kubernetes: Option<&'a KubernetesNames>,
    pub pod_uid: Option<&'a str>,
    pub qos: Option<&'static str>,
    /// When cgscope first saw the cgroup, ms since the Unix epoch.
    pub first_seen_unix_ms: u64,
    pub started_unix_s: Option<i64>,
    pub created_unix_s: Option<i64>,
    pub stats: &'a CgroupStats,
    pub rates: &'a Rates,
    /// `history`, `io_device_rates` and `network_interface_rates` are present only when asked
    /// for (`?history=true`, [`CgroupView::with_history`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryPoint>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io_device_rates: Option<Vec<DeviceRates>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_interface_rates: Option<Vec<InterfaceRates>>,
    /// Present only when asked for (`?processes=true`); `Some(None)`, written `null`, when the
    /// member list could not be read (the cgroup is gone since the sample).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes: Option<Option<ProcessList>>,
}

/// A container's runtime labels as a view shows them: every one, or with an allowlist only
/// the keys it names. Labels often carry what is not meant for every reader (a label
/// `secret.password` was seen in the wild), so the server applies `--label-allowlist`, the
/// list /metrics exports, to the API as well.
#[derive(Debug, Clone, Copy)]
pub struct Labels<'a> {
    all: &'a BTreeMap<String, String>,
    allow: Option<&'a [String]>,
}

impl Serialize for Labels<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let allowed = |key: &String| self.allow.is_none_or(|keys| keys.contains(key));
        serializer.collect_map(self.all.iter().filter(|(k, _)| allowed(k)))
    }
}

impl<'a> CgroupView<'a> {
    /// Adds the cgroup's history: its points and its latest per-device and per-interface rates.
    pub fn with_history(&mut self, h: CgroupHistory) {
        self.history = Some(h.points);
        self.io_device_rates = Some(h.io_devices);
        self.network_interface_rates = Some(h.interfaces);
    }

    /// Shows only the labels whose keys `allowlist` names (none for an empty list).
    pub fn only_labels(&mut self, allowlist: &'a [String]) {
        if let Some(labels) = self.labels.as_mut() {
            labels.allow = Some(allowlist);
        }
    }
}

/// Builds the view of cgroup `i` of a tick, with every label ([`CgroupView::only_labels`]
/// narrows them).
pub fn cgroup_view(tick: &Tick, i: usize) -> Option<CgroupView<'_>> {
    let row = tick.row(i)?;
    let s = row.sample;
    let identity = s.identity.as_ref();
    let meta = identity.and_then(|id| id.metadata.as_deref());
    let (kind, runtime, id, pod) = match identity.map(|i| &i.path) {
        Some(PathIdentity::Container(c)) => (
            "container",
            c.runtime.map(|r| r.as_str()),
            Some(c.id.as_str()),
            c.pod.as_ref(),
        ),
        Some(PathIdentity::Pod(p)) => ("pod", None, None, Some(p)),
        None => ("cgroup", None, None, None),
    };
    Some(CgroupView {
        cgroup: s.path.as_str(),
        kind,
        runtime,
        id,
        name: identity.and_then(CgroupIdentity::given_name),
        display_name: display_name(identity, &s.path),
        image: meta.and_then(|m| m.image.as_deref()),
        labels: meta.map(|m| Labels {
            all: &m.labels,
            allow: None,
        }),
        kubernetes: identity.and_then(CgroupIdentity::kubernetes),
        pod_uid: pod.map(|p| p.uid.as_str()),
        qos: pod.map(|p| p.qos.as_str()),
        first_seen_unix_ms: row.first_seen_ms,
        started_unix_s: meta.and_then(|m| m.started_unix_s),
        created_unix_s: meta.and_then(|m| m.created_unix_s),
        stats: &s.stats,
        rates: row.rates,
        history: None,
        io_device_rates: None,
        network_interface_rates: None,
        processes: None,
    })
}

/// Filters of `GET /api/v1/containers`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerQuery {
    pub name: Option<String>,
    pub runtime: Option<String>,
    pub namespace: Option<String>,
    pub pod: Option<String>,
}

/// True for containers and pods matching every given filter.
pub fn matches(view: &CgroupView<'_>, q: &ContainerQuery) -> bool {
    if view.kind == "cgroup" {
        return false;
    }
    let k8s = view.kubernetes;
    q.name.as_deref().is_none_or(|n| view.name == Some(n))
        && q.runtime.as_deref().is_none_or(|r| view.runtime == Some(r))
        && q.namespace
            .as_deref()
            .is_none_or(|n| k8s.and_then(|k| k.namespace.as_deref()) == Some(n))
        && q.pod
            .as_deref()
            .is_none_or(|p| k8s.and_then(|k| k.pod.as_deref()) == Some(p))
}

/// Finds a container or pod by container id (full, or a unique prefix of 12+ characters),
/// name, or cgroup path.
pub fn find(tick: &Tick, key: &str) -> Option<usize> {
    let cgroups = &tick.snapshot.cgroups;
    let by_path = |c: &CgroupSample| c.path.as_str() == key || c.path.relative() == key;
    if let Some(i) = cgroups.iter().position(by_path) {
        return Some(i);
    }
    let ids: Vec<usize> = (0..cgroups.len())
        .filter(|i| {
            cgroup_view(tick, *i).is_some_and(|v| {
                v.id == Some(key)
                    || v.name == Some(key)
                    || (key.len() >= 12 && v.id.is_some_and(|id| id.starts_with(key)))
            })
        })
        .collect();
    match ids.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// Error body of every failed API call.
#[derive(Debug, Serialize)]
pub struct ErrorView {
    pub error: String,
}
