//! Stage 3: once per tick, sweep the cgroups, identify them, filter, compute rates, record
//! history and publish the tick. Owns time; knows nothing of output formats.

pub mod filter;
pub mod history;
pub mod rates;

use crate::identity::{identify_snapshot, MetadataStore};
use crate::model::metadata::MetadataSource;
use crate::model::{CgroupPath, HistoryPoint, Rates, RuntimeStatus, Tick};
use crate::scan::{now_unix_ms, Scanner};
use filter::CgroupFilter;
use history::History;
use rates::Counters;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How the sampler runs.
#[derive(Debug, Clone)]
pub struct SamplerConfig {
    /// Time between ticks.
    pub interval: Duration,
    /// How far back history goes.
    pub history: Duration,
    /// Hard cap on history points per cgroup, whatever the interval.
    pub history_points: usize,
    pub filter: CgroupFilter,
}

/// The latest tick (`None` until the first one) and the shared history.
#[derive(Debug, Clone)]
pub struct Handle {
    pub latest: watch::Receiver<Option<Arc<Tick>>>,
    pub history: Arc<RwLock<History>>,
}

impl Handle {
    /// The latest tick, if one has been published.
    pub fn tick(&self) -> Option<Arc<Tick>> {
        self.latest.borrow().clone()
    }
}

/// The sampler's state between ticks.
pub struct Sampler {
    scanner: Scanner,
    store: MetadataStore,
    config: SamplerConfig,
    prev: HashMap<CgroupPath, (u64, Counters)>,
    first_seen: HashMap<CgroupPath, u64>,
    history: Arc<RwLock<History>>,
    seq: u64,
}

impl Sampler {
    pub fn new(scanner: Scanner, store: MetadataStore, config: SamplerConfig) -> Self {
        let per_interval = config.interval.as_millis().max(1);
        let by_age =
            usize::try_from(config.history.as_millis() / per_interval).unwrap_or(usize::MAX);
        let points = by_age.saturating_add(1).min(config.history_points);
        let history_ms = u64::try_from(config.history.as_millis()).unwrap_or(u64::MAX);
        Sampler {
            scanner,
            store,
            history: Arc::new(RwLock::new(History::new(history_ms, points))),
            config,
            prev: HashMap::new(),
            first_seen: HashMap::new(),
            seq: 0,
        }
    }

    /// The history shared with readers.
    pub fn history(&self) -> Arc<RwLock<History>> {
        Arc::clone(&self.history)
    }

    /// One tick at wall time `now_ms`: sweep, identify, filter, rates, history.
    pub fn sample_once(&mut self, now_ms: u64) -> Tick {
        let started = Instant::now();
        let mut snapshot = self.scanner.sweep(now_ms);
        identify_snapshot(&mut snapshot, &self.store);
        snapshot.cgroups.retain(|c| self.config.filter.keeps(c));
        let mut rates = Vec::with_capacity(snapshot.cgroups.len());
        let mut first_seen = Vec::with_capacity(snapshot.cgroups.len());
        let mut next_prev = HashMap::with_capacity(snapshot.cgroups.len());
        for sample in &snapshot.cgroups {
            let counters = Counters::of(&sample.stats);
            let r = match self.prev.get(&sample.path) {
                Some((t_ms, prev)) => {
                    let elapsed_s = now_ms.saturating_sub(*t_ms) as f64 / 1000.0;
                    rates::rates(prev, &counters, elapsed_s)
                }
                None => Rates::default(),
            };
            rates.push(r);
            next_prev.insert(sample.path.clone(), (now_ms, counters));
            first_seen.push(*self.first_seen.entry(sample.path.clone()).or_insert(now_ms));
        }
        // Gone cgroups leave every table at once: no stale series, no unbounded growth.
        self.prev = next_prev;
        self.first_seen
            .retain(|path, _| self.prev.contains_key(path));
        if let Ok(mut history) = self.history.write() {
            history.record(
                now_ms,
                snapshot
                    .cgroups
                    .iter()
                    .zip(&rates)
                    .map(|(s, r)| (s.path.clone(), HistoryPoint::of(now_ms, s, *r))),
            );
        }
        self.seq += 1;
        let runtimes = [MetadataSource::Docker, MetadataSource::Containerd]
            .into_iter()
            .map(|source| {
                let state = self.store.source(source);
                RuntimeStatus {
                    runtime: source.as_str(),
                    connected: state.connected(),
                    api_calls: state.api_calls(),
                    errors: state.errors(),
                }
            })
            .collect();
        Tick {
            seq: self.seq,
            snapshot,
            rates,
            first_seen_ms: first_seen,
            sweep_duration_s: started.elapsed().as_secs_f64(),
            runtimes,
        }
    }

    /// Starts ticking every interval on the blocking pool; returns the readers' handle.
    /// The loop ends when every receiver is dropped or `shutdown` resolves.
    pub fn spawn(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Handle {
        let (tx, rx) = watch::channel(None);
        let handle = Handle {
            latest: rx,
            history: self.history(),
        };
        let interval = self.config.interval;
        tokio::spawn(async move {
            let mut sampler = Some(self);
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tokio::pin!(shutdown);
            loop {
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = ticker.tick() => {}
                }
                let Some(mut s) = sampler.take() else { break };
                // The sweep is synchronous file IO: keep it off the async workers.
                let joined = tokio::task::spawn_blocking(move || {
                    let tick = s.sample_once(now_unix_ms());
                    (s, tick)
                })
                .await;
                match joined {
                    Ok((s, tick)) => {
                        sampler = Some(s);
                        if tx.send(Some(Arc::new(tick))).is_err() {
                            break;
                        }
                    }
                    Err(err) => {
                        tracing::error!(%err, "sampler tick failed; stopping the sampler");
                        break;
                    }
                }
            }
        });
        handle
    }
}
