//! Memory: v1 `memory.*` (hierarchical `total_*` keys of memory.stat, as cAdvisor and docker
//! use) and v2 `memory.{current,max,peak,stat,events,swap.*}`, in bytes.

use super::{fold_flat_keyed, format, Controller, Ctx};
use crate::model::{MemoryEvents, MemoryStats};
use std::path::Path;

/// The `memory.stat` figures both versions report, by the field they fill.
#[derive(Debug, Clone, Copy)]
enum Stat {
    Rss,
    Cache,
    MappedFile,
    InactiveFile,
    ActiveFile,
    Swap,
    Kernel,
    Pgfault,
    Pgmajfault,
    PgfaultLocal,
    PgmajfaultLocal,
}

/// v1's keys: the hierarchical `total_*` ones (descendants included, matching
/// `usage_in_bytes`, which is always hierarchical), and the cgroup's own fault counts
/// (cAdvisor's `scope="container"` failures).
const V1_STAT_KEYS: &[(&[u8], Stat)] = &[
    (b"total_rss", Stat::Rss),
    (b"total_cache", Stat::Cache),
    (b"total_mapped_file", Stat::MappedFile),
    (b"total_inactive_file", Stat::InactiveFile),
    (b"total_active_file", Stat::ActiveFile),
    (b"total_swap", Stat::Swap),
    (b"total_pgfault", Stat::Pgfault),
    (b"total_pgmajfault", Stat::Pgmajfault),
    (b"pgfault", Stat::PgfaultLocal),
    (b"pgmajfault", Stat::PgmajfaultLocal),
];

/// v2's keys (always hierarchical; swap is read from `memory.swap.current`).
const V2_STAT_KEYS: &[(&[u8], Stat)] = &[
    (b"anon", Stat::Rss),
    (b"file", Stat::Cache),
    (b"file_mapped", Stat::MappedFile),
    (b"inactive_file", Stat::InactiveFile),
    (b"active_file", Stat::ActiveFile),
    (b"kernel", Stat::Kernel),
    (b"pgfault", Stat::Pgfault),
    (b"pgmajfault", Stat::Pgmajfault),
];

/// The figures of one `memory.stat`, by [`Stat`] (the last variant gives the count).
#[derive(Default)]
struct StatKeys([Option<u64>; Stat::PgmajfaultLocal as usize + 1]);

impl StatKeys {
    fn get(&self, stat: Stat) -> Option<u64> {
        self.0[stat as usize]
    }
}

/// `memory.stat` read through `keys`.
fn read_stat(ctx: &mut Ctx<'_>, dir: &Path, keys: &[(&[u8], Stat)]) -> StatKeys {
    ctx.with_partial(Controller::Memory, dir, "memory.stat", |b| {
        fold_flat_keyed(b, |s: &mut StatKeys, k, v| {
            if let Some((_, stat)) = keys.iter().find(|(key, _)| *key == k) {
                s.0[*stat as usize] = Some(v);
            }
        })
    })
    .unwrap_or_default()
}

/// What both versions take from `usage` and `memory.stat` alike; each reader sets the rest.
fn from_stat(usage: Option<u64>, stat: &StatKeys) -> MemoryStats {
    MemoryStats {
        usage_bytes: usage,
        working_set_bytes: working_set(usage, stat.get(Stat::InactiveFile)),
        rss_bytes: stat.get(Stat::Rss),
        cache_bytes: stat.get(Stat::Cache),
        mapped_file_bytes: stat.get(Stat::MappedFile),
        inactive_file_bytes: stat.get(Stat::InactiveFile),
        active_file_bytes: stat.get(Stat::ActiveFile),
        swap_bytes: stat.get(Stat::Swap),
        kernel_bytes: stat.get(Stat::Kernel),
        pgfault: stat.get(Stat::Pgfault),
        pgmajfault: stat.get(Stat::Pgmajfault),
        pgfault_local: stat.get(Stat::PgfaultLocal),
        pgmajfault_local: stat.get(Stat::PgmajfaultLocal),
        ..MemoryStats::default()
    }
}

/// Working set as cAdvisor and `docker stats` define it: usage minus inactive file cache,
/// floored at 0 (inactive_file can briefly exceed usage on a racing read).
fn working_set(usage: Option<u64>, inactive_file: Option<u64>) -> Option<u64> {
    usage.map(|u| u.saturating_sub(inactive_file.unwrap_or(0)))
}

pub(super) fn read_v1(ctx: &mut Ctx<'_>, dir: &Path) -> Option<MemoryStats> {
    let before = ctx.found;
    let usage = ctx.with(
        Controller::Memory,
        dir,
        "memory.usage_in_bytes",
        format::single_u64,
    );
    let limit = ctx
        .file_or_carried(
            false,
            Controller::Memory,
            dir,
            "memory.limit_in_bytes",
            format::v1_memory_limit,
            |s| s.memory.as_ref().map(|x| x.limit_bytes),
        )
        .flatten();
    // The peak and kernel memory, at the full-read cadence.
    let max_usage = ctx.file_or_carried(
        false,
        Controller::Memory,
        dir,
        "memory.max_usage_in_bytes",
        format::single_u64,
        |s| s.memory.as_ref()?.max_usage_bytes,
    );
    // Counts charges refused at the cgroup's own limit: without one at the previous read it
    // cannot move, and is carried over until the next full read.
    let limit_before = ctx
        .last
        .and_then(|s| s.memory.as_ref()?.limit_bytes)
        .is_some();
    let failcnt = ctx.file_or_carried(
        limit_before,
        Controller::Memory,
        dir,
        "memory.failcnt",
        format::single_u64,
        |s| s.memory.as_ref()?.failcnt,
    );
    let memsw_limit = ctx
        .file_or_carried(
            false,
            Controller::Memory,
            dir,
            "memory.memsw.limit_in_bytes",
            format::v1_memory_limit,
            |s| s.memory.as_ref().map(|x| x.memsw_limit_bytes),
        )
        .flatten();
    let kmem = ctx.file_or_carried(
        false,
        Controller::Memory,
        dir,
        "memory.kmem.usage_in_bytes",
        format::single_u64,
        |s| s.memory.as_ref()?.kernel_bytes,
    );
    let reservation = ctx
        .file_or_carried(
            false,
            Controller::Memory,
            dir,
            "memory.soft_limit_in_bytes",
            format::v1_memory_limit,
            |s| s.memory.as_ref().map(|x| x.reservation_bytes),
        )
        .flatten();
    let stat = read_stat(ctx, dir, V1_STAT_KEYS);
    #[derive(Default)]
    struct Oom {
        oom_kill: Option<u64>,
        under_oom: Option<u64>,
    }
    // OOM kills and the OOM state, at the full-read cadence.
    let oom = ctx.fresh_or_carried(
        false,
        |ctx| {
            ctx.with_partial(Controller::Memory, dir, "memory.oom_control", |b| {
                fold_flat_keyed(b, |s: &mut Oom, k, v| match k {
                    b"oom_kill" => s.oom_kill = Some(v),
                    b"under_oom" => s.under_oom = Some(v),
                    _ => {}
                })
            })
        },
        |s| {
            let m = s.memory.as_ref()?;
            Some(Oom {
                oom_kill: m.oom_kills,
                under_oom: m.under_oom.map(u64::from),
            })
        },
    );
    if ctx.found == before {
        return None;
    }
    let oom = oom.unwrap_or_default();
    Some(MemoryStats {
        limit_bytes: limit,
        max_usage_bytes: max_usage,
        memsw_limit_bytes: memsw_limit,
        kernel_bytes: kmem,
        failcnt,
        reservation_bytes: reservation,
        oom_kills: oom.oom_kill,
        under_oom: oom.under_oom.map(|v| v != 0),
        ..from_stat(usage, &stat)
    })
}

pub(super) fn read_v2(ctx: &mut Ctx<'_>, dir: &Path) -> Option<MemoryStats> {
    let before = ctx.found;
    // The root cgroup has no memory.current/max/events (seen on 6.1): usage is derived below,
    // the others stay None.
    let usage = ctx.with(
        Controller::Memory,
        dir,
        "memory.current",
        format::single_u64,
    );
    let limit = ctx
        .file_or_carried(
            false,
            Controller::Memory,
            dir,
            "memory.max",
            format::single_limit,
            |s| s.memory.as_ref().map(|x| x.limit_bytes),
        )
        .flatten();
    // The peak, at the full-read cadence.
    let peak = ctx.file_or_carried(
        false,
        Controller::Memory,
        dir,
        "memory.peak",
        format::single_u64,
        |s| s.memory.as_ref()?.max_usage_bytes,
    );
    // cAdvisor's reservation on v2 is memory.min (the protection the kubelet sets for
    // Guaranteed memory requests when MemoryQoS is on).
    let reservation = ctx.file_or_carried(
        false,
        Controller::Memory,
        dir,
        "memory.min",
        format::single_u64,
        |s| s.memory.as_ref()?.reservation_bytes,
    );
    let swap = ctx.with(
        Controller::Memory,
        dir,
        "memory.swap.current",
        format::single_u64,
    );
    let swap_limit = ctx
        .file_or_carried(
            false,
            Controller::Memory,
            dir,
            "memory.swap.max",
            format::single_limit,
            |s| s.memory.as_ref().map(|x| x.swap_limit_bytes),
        )
        .flatten();
    let stat = read_stat(ctx, dir, V2_STAT_KEYS);
    // Memory events (OOM kills among them), at the full-read cadence.
    let events = ctx.fresh_or_carried(
        false,
        |ctx| {
            ctx.with_partial(Controller::Memory, dir, "memory.events", |b| {
                fold_flat_keyed(b, |e: &mut MemoryEvents, k, v| match k {
                    b"low" => e.low = Some(v),
                    b"high" => e.high = Some(v),
                    b"max" => e.max = Some(v),
                    b"oom" => e.oom = Some(v),
                    b"oom_kill" => e.oom_kill = Some(v),
                    _ => {}
                })
            })
        },
        |s| s.memory.as_ref()?.events.clone(),
    );
    if ctx.found == before {
        return None;
    }
    // The root has no memory.current: runc (and so cAdvisor and the kubelet) count its usage as
    // memory.stat's anon + file, what v1's usage_in_bytes counts (rss + cache). Without it the
    // node would have no working set, and metrics-server drops a node without one.
    let usage = usage.or_else(|| {
        let (anon, file) = stat.get(Stat::Rss).zip(stat.get(Stat::Cache))?;
        (ctx.cgroup.as_str() == "/").then_some(anon.saturating_add(file))
    });
    Some(MemoryStats {
        limit_bytes: limit,
        max_usage_bytes: peak,
        swap_bytes: swap,
        swap_limit_bytes: swap_limit,
        reservation_bytes: reservation,
        oom_kills: events.as_ref().and_then(|e| e.oom_kill),
        events,
        ..from_stat(usage, &stat)
    })
}

#[cfg(test)]
mod tests {
    use super::working_set;

    #[test]
    fn working_set_is_usage_minus_inactive_file_floored_at_zero() {
        assert_eq!(working_set(Some(100), Some(30)), Some(70));
        assert_eq!(working_set(Some(10), Some(30)), Some(0));
        assert_eq!(working_set(Some(10), None), Some(10));
        assert_eq!(working_set(None, Some(10)), None);
    }
}
