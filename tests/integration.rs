//! The single integration test binary (one link instead of one per file).

#![allow(clippy::unwrap_used, clippy::expect_used)]

// Shared helpers: fixture paths, golden files, CI gating of real-component tests.
mod support;

// Golden snapshots of every fixture scenario, and capture/replay round trips.
mod scenarios;
// /metrics and JSON goldens, promtool, round-trip parse, allowlist, README metric table.
mod metrics;
// Property tests over every parser, and garbage fed through the whole reader.
mod parsers;
// Path rules: dozens of real-world cgroup paths, matching and not matching.
mod identity_rules;
// Real Docker and containerd: identity, metadata, events, restarts, zero calls per tick.
mod real_runtime;
// Real cgroup v1 on this host: own cgroups, real workloads, asserted through the library.
mod real_v1;
// Real v1 cgroups named with bytes that are not UTF-8: snapshot, serve's inotify, capture/replay.
mod cgroup_names;
// Real cgroup v1: one cgroup's process list (?processes=true) over a real sleep and busy loop.
mod real_processes;
// Real cgroup v2: a qemu VM with a v2-only kernel runs workloads and cgscope snapshot.
mod real_v2;
// Real Prometheus scraping `cgscope serve` over real containers; wrk load with flat RSS.
mod real_prometheus;
// kube-prometheus's kubelet scrape config over a real pod with shared-namespace traffic.
mod real_kubelet;
// src/openapi.json against the live server's answers on the fixtures, then schemathesis.
mod openapi;
// `cgscope top` on real engines: JSON vs docker stats, tmux-driven interactive view, k8s names, --server.
mod real_top;
// The debugging web UI in headless Chromium over real containers; screenshots in target/.
mod ui_browser;
// daemonset.yaml (schema, checkov, flags) and the FROM-scratch image run as it says: TLS, tokens, mTLS.
mod deploy;
// TLS, mTLS, credentials reloaded by contents, `top --server` with a token or client certificate.
mod credentials;
// Hostile files, a stuck sampler, a frozen runtime socket, slow and numerous clients.
mod reliability;
// The kubelet's /metrics/resource and /stats/summary: goldens, schema, metrics-server's decoder over real pods.
mod kubelet;
// deploy/metrics-server/: the variant (schema, checkov, drift from daemonset.yaml) and the metrics-server patch.
mod deploy_metrics_server;
// deploy/: kustomize renderings equal daemonset.yaml's variants, ServiceMonitor against its CRD,
// the Grafana dashboard's every query answered by a real Prometheus over real containers.
mod operator_kit;
