//! Which connections to end so that the bodies of earlier ticks still held by responses stay
//! within a byte budget: those that stopped reading, oldest tick first, and those still reading
//! only past twice the budget; never for the current tick. Knows bodies only by tick, kind, size
//! and liveness token, and connections by their abort handles; not how bodies are made or sent.

use super::connections::Abort;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// One body given to responses: its size, a token that dies with the body's last reference,
/// and the connections it was given to.
#[derive(Debug)]
struct Entry {
    bytes: u64,
    alive: Weak<()>,
    connections: Vec<Arc<Abort>>,
    /// When it was first given to a response.
    given_at: Instant,
}

/// The bodies given to responses, by tick and kind `K`, while any reference to them lives.
#[derive(Debug)]
pub struct Registry<K> {
    entries: HashMap<(u64, K), Entry>,
    /// Connections ended, in all.
    ended: u64,
}

impl<K> Default for Registry<K> {
    fn default() -> Self {
        Registry {
            entries: HashMap::new(),
            ended: 0,
        }
    }
}

impl<K: Copy + Eq + Hash + std::fmt::Debug> Registry<K> {
    /// Records that `connection` was given the body of tick `seq` and kind `kind`, of `bytes`,
    /// alive while `alive` can be upgraded.
    pub fn register(
        &mut self,
        seq: u64,
        kind: K,
        bytes: u64,
        alive: &Weak<()>,
        connection: &Arc<Abort>,
    ) {
        connection.serving(seq);
        let entry = self.entries.entry((seq, kind)).or_insert_with(|| Entry {
            bytes,
            alive: Weak::clone(alive),
            connections: Vec::new(),
            given_at: Instant::now(),
        });
        // A keep-alive connection asking twice within a tick is one holder.
        if !entry.connections.iter().any(|c| Arc::ptr_eq(c, connection)) {
            entry.connections.push(Arc::clone(connection));
        }
    }

    /// Forgets the bodies nothing holds any more; then, while the bodies of ticks before
    /// `current` first given at least `grace` before `now` add up to more than `budget` bytes,
    /// ends the connections holding them whose writes have made no progress for `grace`,
    /// oldest tick first (a body left with no other holder stops counting). Connections still
    /// reading are ended too, oldest tick first, only while the total stays above twice the
    /// budget: the hard bound, which scrapers reading at any usual speed never reach. A body
    /// younger than `grace` is not counted: such a scraper has sent it by then, and a client
    /// that stopped reading has not yet stalled that long. Returns how many it ended.
    pub fn enforce(&mut self, current: u64, budget: u64, grace: Duration, now: Instant) -> u64 {
        self.entries.retain(|_, e| e.alive.strong_count() > 0);
        let mut stale: Vec<(u64, K)> = self
            .entries
            .keys()
            .filter(|(seq, _)| *seq < current)
            .filter(|key| now.saturating_duration_since(self.entries[*key].given_at) >= grace)
            .copied()
            .collect();
        stale.sort_unstable_by_key(|(seq, _)| *seq);
        let mut held: u64 = stale.iter().map(|k| self.entries[k].bytes).sum();
        let mut ended = 0;
        for (stalled_only, bound) in [(true, budget), (false, budget.saturating_mul(2))] {
            for key in &stale {
                if held <= bound {
                    break;
                }
                let Some(entry) = self.entries.get_mut(key) else {
                    continue;
                };
                // A connection since given a newer tick's body has sent this one (HTTP/1.1
                // answers in order): it is not what holds it.
                entry
                    .connections
                    .retain(|c| c.latest_tick() == key.0 && !c.is_aborted());
                let (cut, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut entry.connections)
                    .into_iter()
                    .partition(|c| !stalled_only || c.stalled_for().is_some_and(|d| d >= grace));
                for connection in &cut {
                    connection.abort();
                    tracing::debug!(
                        tick = key.0,
                        body = ?key.1,
                        bytes = entry.bytes,
                        current,
                        budget,
                        stalled = ?connection.stalled_for(),
                        "ending a connection that holds an earlier tick's body over the budget"
                    );
                }
                ended += cut.len() as u64;
                entry.connections = kept;
                if entry.connections.is_empty() {
                    // Its memory goes as the ended connections close.
                    held -= entry.bytes;
                    self.entries.remove(key);
                }
            }
        }
        self.ended += ended;
        ended
    }

    /// Connections ended by [`Registry::enforce`] so far.
    pub fn ended(&self) -> u64 {
        self.ended
    }

    /// Bytes of the bodies of ticks before `current` counted now (live or not yet pruned).
    #[cfg(test)]
    pub fn stale_bytes(&self, current: u64) -> u64 {
        self.entries
            .iter()
            .filter(|((seq, _), _)| *seq < current)
            .map(|(_, e)| e.bytes)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A live body of `bytes` and the connections given it.
    struct Body {
        alive: Arc<()>,
        connections: Vec<Arc<Abort>>,
    }

    fn give(registry: &mut Registry<&'static str>, seq: u64, kind: &'static str, n: usize) -> Body {
        let alive = Arc::new(());
        // Clients that stopped reading, unless a test says otherwise.
        let connections: Vec<_> = (0..n).map(|_| Arc::new(Abort::default())).collect();
        for c in &connections {
            c.set_stalled(true);
            registry.register(seq, kind, 10, &Arc::downgrade(&alive), c);
        }
        Body { alive, connections }
    }

    /// An instant after every body given so far.
    fn later() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    fn ended(body: &Body) -> Vec<bool> {
        body.connections.iter().map(|c| c.is_aborted()).collect()
    }

    #[test]
    fn the_oldest_tick_goes_first_and_the_current_one_never() {
        let mut registry = Registry::default();
        let t1 = give(&mut registry, 1, "metrics", 2);
        let t2 = give(&mut registry, 2, "metrics", 1);
        let t3 = give(&mut registry, 3, "metrics", 1);
        let now = give(&mut registry, 4, "metrics", 3);
        // 30 bytes of earlier ticks against 15: ticks 1 and 2 go, 3 fits.
        assert_eq!(registry.enforce(4, 15, Duration::ZERO, later()), 3);
        assert_eq!(ended(&t1), [true, true]);
        assert_eq!(ended(&t2), [true]);
        assert_eq!(ended(&t3), [false]);
        assert_eq!(registry.stale_bytes(4), 10);
        // A budget of 0 keeps the current tick's bodies only, however many hold them.
        assert_eq!(registry.enforce(4, 0, Duration::ZERO, later()), 1);
        assert_eq!(ended(&t3), [true]);
        assert_eq!(ended(&now), [false, false, false]);
        assert_eq!(registry.ended(), 4);
    }

    #[test]
    fn each_body_counts_once_whatever_the_number_of_holders() {
        let mut registry = Registry::default();
        let _t1 = give(&mut registry, 1, "metrics", 50);
        let _t1_json = give(&mut registry, 1, "cgroups", 50);
        // A keep-alive connection asking twice is one holder.
        let again = Arc::clone(&_t1.connections[0]);
        registry.register(1, "metrics", 10, &Arc::downgrade(&_t1.alive), &again);
        assert_eq!(registry.stale_bytes(2), 20);
        assert_eq!(registry.enforce(2, 20, Duration::ZERO, later()), 0);
        assert_eq!(registry.ended(), 0);
    }

    #[test]
    fn bodies_nothing_holds_are_forgotten() {
        let mut registry = Registry::default();
        let t1 = give(&mut registry, 1, "metrics", 2);
        let t2 = give(&mut registry, 2, "metrics", 1);
        drop(t1);
        assert_eq!(registry.enforce(3, 10, Duration::ZERO, later()), 0);
        assert_eq!(ended(&t2), [false]);
        assert_eq!(registry.stale_bytes(3), 10);
    }

    #[test]
    fn a_connection_given_a_newer_body_is_not_ended_for_an_older_one() {
        let mut registry = Registry::default();
        let t1 = give(&mut registry, 1, "metrics", 2);
        let moved_on = Arc::clone(&t1.connections[0]);
        let t2 = Arc::new(());
        registry.register(2, "metrics", 10, &Arc::downgrade(&t2), &moved_on);
        assert_eq!(registry.enforce(3, 10, Duration::ZERO, later()), 1);
        assert_eq!(ended(&t1), [false, true]);
    }

    #[test]
    fn connections_still_reading_are_ended_only_past_twice_the_budget() {
        let mut registry = Registry::default();
        let reading = give(&mut registry, 1, "metrics", 1);
        reading.connections[0].set_stalled(false);
        let stalled = give(&mut registry, 2, "metrics", 2);
        // 20 bytes against 10: the stalled holders of tick 2 are ended, though tick 1 is
        // older; then tick 1 alone fits.
        assert_eq!(registry.enforce(3, 10, Duration::ZERO, later()), 2);
        assert_eq!(ended(&stalled), [true, true]);
        assert_eq!(ended(&reading), [false]);
        assert_eq!(registry.stale_bytes(3), 10);
        // Within twice the budget, a reader is not ended; past it, it is.
        assert_eq!(registry.enforce(3, 5, Duration::ZERO, later()), 0);
        assert_eq!(ended(&reading), [false]);
        assert_eq!(registry.enforce(3, 4, Duration::ZERO, later()), 1);
        assert_eq!(ended(&reading), [true]);
    }

    #[test]
    fn a_stall_shorter_than_the_grace_is_not_yet_a_stall() {
        let mut registry = Registry::default();
        let paused = give(&mut registry, 1, "metrics", 1);
        let grace = Duration::from_secs(60);
        // 10 bytes against 5: over the budget, within twice it.
        assert_eq!(registry.enforce(2, 5, grace, Instant::now() + grace), 0);
        assert_eq!(ended(&paused), [false]);
    }

    #[test]
    fn bodies_given_within_the_grace_do_not_count() {
        let mut registry = Registry::default();
        let t1 = give(&mut registry, 1, "metrics", 2);
        let t2 = give(&mut registry, 2, "metrics", 1);
        assert_eq!(
            registry.enforce(3, 0, Duration::from_secs(60), Instant::now()),
            0
        );
        assert_eq!(ended(&t1), [false, false]);
        assert_eq!(ended(&t2), [false]);
        assert_eq!(registry.enforce(3, 0, Duration::ZERO, Instant::now()), 3);
    }
}
