//! Stage 3: once per tick, sweep the cgroups, identify them, filter, compute rates, record
//! history and publish the tick. Owns time; knows nothing of output formats.

pub mod filter;
pub mod history;
pub mod rates;

use crate::identity::sources::{Source, SOURCES};
use crate::identity::{identify_snapshot, MetadataStore};
use crate::model::{CgroupPath, Rates, RuntimeStatus, Tick};
use crate::proc::processes::{clock_ticks_per_second, ProcessReader};
use crate::scan::{now_unix_ms, Scanner};
use filter::CgroupFilter;
use history::History;
use rates::Counters;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// The latest tick (`None` until the first one), the shared history, and when the tick was
/// published.
#[derive(Debug, Clone)]
pub struct Handle {
    pub latest: watch::Receiver<Option<Arc<Tick>>>,
    pub history: Arc<RwLock<History>>,
    pub heartbeat: Heartbeat,
}

/// When the sampler last published a tick, on the monotonic clock: the watchdog's input. A
/// sweep stuck in the kernel (a hung filesystem under the cgroup root) publishes nothing, and
/// only the growing age shows it; /metrics bodies are cached per tick, so the age is read
/// per request from here.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    origin: Instant,
    /// Milliseconds after `origin` of the last publication, plus one; 0 before the first.
    published_ms: Arc<AtomicU64>,
    interval: Duration,
}

impl Heartbeat {
    /// Below this, a late tick is not stale whatever the interval: a sweep of a big node,
    /// or a busy machine, may run late by a second or two without being stuck.
    pub const MIN_STALE: Duration = Duration::from_secs(5);

    /// A heartbeat that has not beaten, for a sampler ticking every `interval`.
    pub fn new(interval: Duration) -> Self {
        Heartbeat {
            origin: Instant::now(),
            published_ms: Arc::new(AtomicU64::new(0)),
            interval,
        }
    }

    /// Records a publication now.
    pub fn beat(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.published_ms.store(ms + 1, Ordering::Relaxed);
    }

    /// Time since the last publication; `None` before the first.
    pub fn age(&self) -> Option<Duration> {
        match self.published_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(
                self.origin
                    .elapsed()
                    .saturating_sub(Duration::from_millis(ms - 1)),
            ),
        }
    }

    /// Older than this, the last tick is stale: three intervals, at least [`Self::MIN_STALE`].
    pub fn stale_after(&self) -> Duration {
        self.interval.saturating_mul(3).max(Self::MIN_STALE)
    }

    /// The last publication is older than [`Self::stale_after`] (never stale before the first:
    /// that is "not ready yet", not "stuck").
    pub fn is_stale(&self) -> bool {
        self.age().is_some_and(|age| age > self.stale_after())
    }
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
    /// Every cgroup of the previous tick; one entry (one copy of the path) per cgroup for as
    /// long as it lives, updated in place each tick.
    tracked: HashMap<CgroupPath, Tracked>,
    history: Arc<RwLock<History>>,
    seq: u64,
    /// Reads cgscope's own process each tick (`process_*` families).
    own: ProcessReader,
}

/// What the sampler remembers of one cgroup between ticks.
#[derive(Debug, Clone, Copy)]
struct Tracked {
    /// Time of the previous sample, ms since the Unix epoch.
    t_ms: u64,
    counters: Counters,
    /// When this process first saw the cgroup, ms since the Unix epoch.
    first_seen_ms: u64,
    /// The tick that last saw it; entries of older ticks are gone cgroups, dropped.
    seq: u64,
}

impl Sampler {
    pub fn new(scanner: Scanner, store: MetadataStore, config: SamplerConfig) -> Self {
        let per_interval = config.interval.as_millis().max(1);
        let by_age =
            usize::try_from(config.history.as_millis() / per_interval).unwrap_or(usize::MAX);
        let points = by_age.saturating_add(1).min(config.history_points);
        let history_ms = u64::try_from(config.history.as_millis()).unwrap_or(u64::MAX);
        let own = ProcessReader::new(scanner.proc_root(), clock_ticks_per_second());
        Sampler {
            own,
            scanner,
            store,
            history: Arc::new(RwLock::new(History::new(history_ms, points))),
            config,
            tracked: HashMap::new(),
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
        self.seq += 1;
        let seq = self.seq;
        let mut rates = Vec::with_capacity(snapshot.cgroups.len());
        let mut first_seen = Vec::with_capacity(snapshot.cgroups.len());
        for sample in &snapshot.cgroups {
            let counters = Counters::of(&sample.stats);
            // Paths are cloned only for cgroups new to this tick: most of a tick's cgroups were
            // in the previous one, and a clone per cgroup per tick was allocation churn.
            // Entries not seen in the previous tick were dropped at its end, so an entry found
            // here holds that tick's counters.
            let (r, since) = match self.tracked.get_mut(&sample.path) {
                Some(t) => {
                    let elapsed_s = now_ms.saturating_sub(t.t_ms) as f64 / 1000.0;
                    let r = rates::rates(&t.counters, &counters, elapsed_s);
                    t.t_ms = now_ms;
                    t.counters = counters;
                    t.seq = seq;
                    (r, t.first_seen_ms)
                }
                None => {
                    self.tracked.insert(
                        sample.path.clone(),
                        Tracked {
                            t_ms: now_ms,
                            counters,
                            first_seen_ms: now_ms,
                            seq,
                        },
                    );
                    (Rates::default(), now_ms)
                }
            };
            rates.push(r);
            first_seen.push(since);
        }
        // Gone cgroups leave every table at once: no stale series, no unbounded growth.
        self.tracked.retain(|_, t| t.seq == seq);
        if let Ok(mut history) = self.history.write() {
            history.record(
                now_ms,
                snapshot.cgroups.iter().zip(&rates).map(|(s, r)| (s, *r)),
            );
        }
        let runtimes = SOURCES
            .iter()
            .map(
                |&Source {
                     runtime: source, ..
                 }| {
                    let state = self.store.source(source);
                    RuntimeStatus {
                        runtime: source.as_str(),
                        connected: state.connected(),
                        api_calls: state.api_calls(),
                        errors: state.errors(),
                    }
                },
            )
            .collect();
        Tick {
            seq,
            snapshot,
            rates,
            first_seen_ms: first_seen,
            sweep_duration_s: started.elapsed().as_secs_f64(),
            runtimes,
            own_process: self.own.own(),
        }
    }

    /// Starts ticking every interval on a thread of its own; returns the readers' handle and
    /// the running loop. The loop ends when every receiver is dropped or `shutdown` resolves
    /// (checked between ticks: a sweep in progress runs to its end). Must be called within a
    /// tokio runtime, which watches `shutdown`.
    ///
    /// Not on tokio's blocking pool: requests use that pool (renders, process lists), and a
    /// tick waiting behind them for a thread ran late.
    pub fn spawn(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<(Handle, Running)> {
        let (tx, rx) = watch::channel(None);
        let heartbeat = Heartbeat::new(self.config.interval);
        let handle = Handle {
            latest: rx,
            history: self.history(),
            heartbeat: heartbeat.clone(),
        };
        let interval = self.config.interval;
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let mut sampler = self;
        std::thread::Builder::new()
            .name("cgscope-sampler".into())
            .spawn(move || {
                // Dropped when the loop ends, however it ends: what `Running::wait` waits for.
                let _done = done_tx;
                let mut next = Instant::now();
                loop {
                    let wait = next.saturating_duration_since(Instant::now());
                    // A message, or the sender gone with the runtime: stop.
                    match stop_rx.recv_timeout(wait) {
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        _ => break,
                    }
                    let started = Instant::now();
                    let tick = sampler.sample_once(now_unix_ms());
                    heartbeat.beat();
                    if tx.send(Some(Arc::new(tick))).is_err() {
                        break;
                    }
                    // A late tick delays the next ones rather than bunching them up.
                    next = started + interval;
                }
            })?;
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(());
        });
        Ok((handle, Running { done: done_rx }))
    }
}

/// The sampler's loop, running on its thread.
#[derive(Debug)]
pub struct Running {
    done: std::sync::mpsc::Receiver<()>,
}

impl Running {
    /// Waits up to `limit` for the loop to end (a sweep stuck in the kernel never does);
    /// whether it ended.
    pub fn wait(&self, limit: Duration) -> bool {
        matches!(
            self.done.recv_timeout(limit),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::Roots;
    use std::fs;
    use std::path::Path;

    /// Sets cgroup `name`'s CPU usage, making the cgroup if needed.
    fn cgroup(root: &Path, name: &str, usage_us: u64) {
        let dir = root.join(name);
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("cpu.stat"),
            format!("usage_usec {usage_us}\nuser_usec 0\nsystem_usec 0\n"),
        )
        .unwrap();
        fs::write(dir.join("memory.current"), "4096\n").unwrap();
    }

    fn row<'a>(tick: &'a Tick, name: &str) -> (&'a Rates, u64) {
        let i = tick
            .snapshot
            .cgroups
            .iter()
            .position(|c| c.path.as_str() == name)
            .unwrap_or_else(|| panic!("{name} not in the tick"));
        (&tick.rates[i], tick.first_seen_ms[i])
    }

    /// With every thread of tokio's blocking pool taken (as by slow requests), ticks are
    /// still published: the sampler does not wait for that pool.
    #[test]
    fn ticks_go_on_while_the_blocking_pool_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("cgroup.controllers"), "cpu memory\n").unwrap();
        cgroup(root, "a", 1);
        let roots = Roots {
            cgroup_root: root.to_path_buf(),
            proc_root: root.join("no-proc"),
            machine_id_file: None,
        };
        let sampler = Sampler::new(
            Scanner::open(&roots).unwrap(),
            MetadataStore::new(),
            SamplerConfig {
                interval: Duration::from_millis(10),
                history: Duration::from_secs(1),
                history_points: 10,
                filter: CgroupFilter::default(),
            },
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (release, released) = std::sync::mpsc::channel::<()>();
        rt.block_on(async move {
            let held = tokio::task::spawn_blocking(move || released.recv());
            let (handle, _running) = sampler.spawn(std::future::pending()).unwrap();
            let mut latest = handle.latest.clone();
            // A hang limit, not a measure: three ticks take 30 ms.
            let third = tokio::time::timeout(
                Duration::from_secs(60),
                latest.wait_for(|t| t.as_ref().is_some_and(|t| t.seq >= 3)),
            )
            .await
            .is_ok();
            release.send(()).unwrap();
            held.await.unwrap().unwrap();
            assert!(third, "no third tick while the blocking pool was taken");
        });
    }

    #[test]
    fn rates_first_seen_and_history_follow_each_cgroup_and_forget_gone_ones() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("cgroup.controllers"), "cpu memory\n").unwrap();
        cgroup(root, "a", 1_000_000);
        let roots = Roots {
            cgroup_root: root.to_path_buf(),
            proc_root: root.join("no-proc"),
            machine_id_file: None,
        };
        let mut sampler = Sampler::new(
            Scanner::open(&roots).unwrap(),
            MetadataStore::new(),
            SamplerConfig {
                interval: Duration::from_secs(1),
                history: Duration::from_secs(60),
                history_points: 100,
                filter: CgroupFilter::default(),
            },
        );
        let history = sampler.history();
        let a = CgroupPath::from_relative("a");

        let t0 = sampler.sample_once(10_000);
        assert_eq!(
            row(&t0, "/a").0,
            &Rates::default(),
            "no rate on first sight"
        );
        assert_eq!(row(&t0, "/a").1, 10_000);

        cgroup(root, "a", 1_500_000);
        let t1 = sampler.sample_once(11_000);
        assert_eq!(row(&t1, "/a").0.cpu_cores, Some(0.5));
        assert_eq!(row(&t1, "/a").1, 10_000, "first seen stays");
        assert_eq!(t1.seq, 2);

        fs::remove_file(root.join("a/cpu.stat")).unwrap();
        fs::remove_file(root.join("a/memory.current")).unwrap();
        fs::remove_dir(root.join("a")).unwrap();
        cgroup(root, "b", 7);
        let t2 = sampler.sample_once(12_000);
        assert!(t2.snapshot.cgroups.iter().all(|c| c.path != a));
        assert_eq!(row(&t2, "/b").1, 12_000);
        assert!(
            history.read().unwrap().points(&a).is_empty(),
            "gone: forgotten"
        );

        // Back under the same name: a new cgroup to us, with no rate against the old one.
        cgroup(root, "a", 9_000_000);
        let t3 = sampler.sample_once(13_000);
        assert_eq!(row(&t3, "/a").0, &Rates::default());
        assert_eq!(row(&t3, "/a").1, 13_000);
        let h = history.read().unwrap();
        assert_eq!(
            h.points(&a).iter().map(|p| p.t_ms).collect::<Vec<_>>(),
            [13_000]
        );
        assert_eq!(
            h.points(&CgroupPath::from_relative("b"))
                .iter()
                .map(|p| (p.t_ms, p.memory_usage_bytes))
                .collect::<Vec<_>>(),
            [(12_000, Some(4096)), (13_000, Some(4096))]
        );
    }
}
