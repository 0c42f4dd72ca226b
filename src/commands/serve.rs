//! `cgscope serve`: wires the reader, the runtime watchers, the sampler and the HTTP server,
//! and shuts down cleanly on SIGTERM or SIGINT.

use crate::cli::{RuntimeArgs, ServeArgs};
use crate::export::prometheus::RenderOptions;
use crate::http::credentials::{Security, SecurityOptions};
use crate::http::tls::TlsFiles;
use crate::http::{self, AppState};
use crate::identity::sources::check_sockets;
use crate::identity::watch::spawn_watchers;
use crate::identity::MetadataStore;
use crate::process_list::ProcessLister;
use crate::sampler::filter::CgroupFilter;
use crate::sampler::{Sampler, SamplerConfig};
use crate::scan::{Roots, Scanner};
use anyhow::Context;

pub fn run(roots: &Roots, runtimes: &RuntimeArgs, args: &ServeArgs) -> anyhow::Result<()> {
    if args.interval.is_zero() {
        anyhow::bail!("--interval must be greater than zero");
    }
    if args.max_connections == 0 || args.write_timeout.is_zero() {
        anyhow::bail!("--max-connections and --write-timeout must be greater than zero");
    }
    if args.credentials_reload_interval.is_zero() {
        anyhow::bail!("--credentials-reload-interval must be greater than zero");
    }
    let filter = CgroupFilter::new(&args.include, &args.exclude, args.only_containers)?;
    let security = Security::load(&SecurityOptions {
        tls: args
            .tls_cert
            .as_ref()
            .zip(args.tls_key.as_ref())
            .map(|(cert, key)| TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: args.client_ca.clone(),
            }),
        bearer_token_file: args.bearer_token_file.clone(),
        allowed_hosts: args.allowed_hosts.clone(),
    })
    .context("cannot set up endpoint security")?;
    if args.bearer_token_file.is_some() && args.tls_cert.is_none() {
        tracing::warn!(
            "--bearer-token-file without --tls-cert: tokens cross the network in clear text"
        );
    }
    // One directory per cgroup and hierarchy stays open between samples.
    crate::files::raise_open_file_limit();
    if !rustix::process::geteuid().is_root() {
        tracing::warn!(
            "not running as root: cgroups and /proc entries of other users cannot be read, so \
             read errors and missing network stats follow; run as root, or in the DaemonSet \
             (daemonset.yaml), which grants what is needed"
        );
    }
    let mut scanner = Scanner::open(roots).context("cannot start the cgroup reader")?;
    let layout = scanner.cgroups().layout().version;
    scanner.set_full_read_every(full_read_every_samples(args.full_read_every, args.interval));
    // Per-CPU usage feeds only the per-CPU series: not read unless they are asked for.
    scanner.set_per_cpu(args.per_cpu);
    scanner.set_kept_files(args.kept_files);
    // Kept directories leave room for every connection the server may hold, and the server
    // holds no more than the limit leaves after that (`connections::connection_cap`).
    scanner.set_reserved_fds(crate::http::connections::reader_reserve(
        args.max_connections,
    ));
    // Same layout as the sweeps, so a detail request reads the tree the tick came from.
    let processes = ProcessLister::new(scanner.cgroups().layout().clone(), &roots.proc_root);
    let sockets = runtimes.to_sockets();
    check_sockets(&sockets)?;
    let store = MetadataStore::new();
    if let Some(file) = &runtimes.runtime_replay {
        super::runtime::load_replay(file, &store)?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let served = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let scheme = if args.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        let ui_host = if addr.ip().is_unspecified() {
            format!("localhost:{}", addr.port())
        } else {
            addr.to_string()
        };
        tracing::info!(
            listen = %addr,
            ui = %format!("{scheme}://{ui_host}/"),
            cgroup_layout = %layout,
            runtimes = %sockets,
            tls = args.tls_cert.is_some(),
            client_certs = args.client_ca.is_some(),
            bearer_tokens = args.bearer_token_file.is_some(),
            "serving"
        );
        if !addr.ip().is_loopback() && args.bearer_token_file.is_none() && args.client_ca.is_none()
        {
            // The default (cAdvisor's port on every address) keeps existing scrape configs
            // working; say once what it exposes, so it is a choice and not an accident.
            tracing::warn!(
                listen = %addr,
                "no authentication on a non-loopback address: anyone who can reach this port \
                 reads every container's metrics, names and allowlisted labels (process lists \
                 stay loopback-only); see README, \"Security model\", for the hardened setup"
            );
        }
        spawn_watchers(
            &tokio::runtime::Handle::current(),
            &sockets,
            &store,
            args.runtime_resync,
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let sampler = Sampler::new(
            scanner,
            store,
            SamplerConfig {
                interval: args.interval,
                history: args.history,
                history_points: args.history_points,
                filter,
            },
        );
        let mut sampler_stop = stop_rx.clone();
        let (handle, sampling) = sampler
            .spawn(async move {
                let _ = sampler_stop.wait_for(|stop| *stop).await;
            })
            .context("cannot start the sampler thread")?;
        let state = AppState::new(
            handle,
            RenderOptions {
                label_allowlist: args.label_allowlist.clone(),
                last_scrape_duration_s: None,
                version: env!("CARGO_PKG_VERSION"),
                per_cpu: args.per_cpu,
            },
            processes,
        );
        let (auth, tls) = (security.auth(), security.tls());
        let reloader = security.spawn_reloader(args.credentials_reload_interval);
        let mut http_stop = stop_rx;
        let server = tokio::spawn(http::serve_secured(
            listener,
            state,
            auth,
            tls,
            http::Limits {
                max_connections: args.max_connections,
                write_timeout: args.write_timeout,
                stale_body_budget: args.stale_body_budget,
                ..http::Limits::default()
            },
            async move {
                let _ = http_stop.wait_for(|stop| *stop).await;
            },
        ));
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
        reloader.abort();
        server
            .await
            .context("server task failed")?
            .context("server failed")?;
        Ok(sampling)
    });
    // A sweep stuck in the kernel (a hung filesystem under the cgroup root) never returns:
    // give a sweep in progress a grace, then exit, which ends its thread with the process.
    // The same for blocking tasks (process listings, renders) the runtime would wait for.
    let deadline = std::time::Instant::now() + SWEEP_SHUTDOWN_GRACE;
    if let Ok(sampling) = &served {
        sampling.wait(SWEEP_SHUTDOWN_GRACE);
    }
    rt.shutdown_timeout(deadline.saturating_duration_since(std::time::Instant::now()));
    served.map(drop)
}

/// How long a shutdown waits for a sweep in progress.
const SWEEP_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Resolves on SIGTERM (Kubernetes) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// `--full-read-every` in samples: at least 1 (every sample full), rounded up.
fn full_read_every_samples(every: std::time::Duration, interval: std::time::Duration) -> u32 {
    let interval_ms = interval.as_millis().max(1);
    u32::try_from(every.as_millis().div_ceil(interval_ms))
        .unwrap_or(u32::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::full_read_every_samples;
    use std::time::Duration;

    #[test]
    fn full_read_cadence_in_samples() {
        let s = Duration::from_secs;
        assert_eq!(full_read_every_samples(s(10), s(1)), 10);
        assert_eq!(full_read_every_samples(s(0), s(1)), 1);
        assert_eq!(full_read_every_samples(s(10), s(3)), 4);
        assert_eq!(full_read_every_samples(s(1), s(10)), 1);
    }
}
