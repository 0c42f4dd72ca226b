//! Memory: v1 `memory.*` (hierarchical `total_*` keys of memory.stat, as cAdvisor and docker
//! use) and v2 `memory.{current,max,peak,stat,events,swap.*}`, in bytes.

use super::{fold_flat_keyed, format, Controller, Ctx};
use crate::model::{MemoryEvents, MemoryStats};
use std::path::Path;

#[derive(Default)]
struct StatKeys {
    rss: Option<u64>,
    cache: Option<u64>,
    mapped_file: Option<u64>,
    inactive_file: Option<u64>,
    active_file: Option<u64>,
    swap: Option<u64>,
    kernel: Option<u64>,
    pgfault: Option<u64>,
    pgmajfault: Option<u64>,
    pgfault_local: Option<u64>,
    pgmajfault_local: Option<u64>,
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
    let stat = ctx.with_partial(Controller::Memory, dir, "memory.stat", |b| {
        // The total_* keys include descendants, matching usage_in_bytes (always hierarchical).
        fold_flat_keyed(b, |s: &mut StatKeys, k, v| match k {
            b"total_rss" => s.rss = Some(v),
            b"total_cache" => s.cache = Some(v),
            b"total_mapped_file" => s.mapped_file = Some(v),
            b"total_inactive_file" => s.inactive_file = Some(v),
            b"total_active_file" => s.active_file = Some(v),
            b"total_swap" => s.swap = Some(v),
            b"total_pgfault" => s.pgfault = Some(v),
            b"total_pgmajfault" => s.pgmajfault = Some(v),
            // The cgroup's own tasks: cAdvisor's scope="container" failures.
            b"pgfault" => s.pgfault_local = Some(v),
            b"pgmajfault" => s.pgmajfault_local = Some(v),
            _ => {}
        })
    });
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
    let stat = stat.unwrap_or_default();
    let oom = oom.unwrap_or_default();
    Some(MemoryStats {
        usage_bytes: usage,
        limit_bytes: limit,
        max_usage_bytes: max_usage,
        working_set_bytes: working_set(usage, stat.inactive_file),
        rss_bytes: stat.rss,
        cache_bytes: stat.cache,
        mapped_file_bytes: stat.mapped_file,
        inactive_file_bytes: stat.inactive_file,
        active_file_bytes: stat.active_file,
        swap_bytes: stat.swap,
        swap_limit_bytes: None,
        memsw_limit_bytes: memsw_limit,
        kernel_bytes: kmem,
        failcnt,
        pgfault: stat.pgfault,
        pgmajfault: stat.pgmajfault,
        pgfault_local: stat.pgfault_local,
        pgmajfault_local: stat.pgmajfault_local,
        reservation_bytes: reservation,
        events: None,
        oom_kills: oom.oom_kill,
        under_oom: oom.under_oom.map(|v| v != 0),
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
    let stat = ctx.with_partial(Controller::Memory, dir, "memory.stat", |b| {
        fold_flat_keyed(b, |s: &mut StatKeys, k, v| match k {
            b"anon" => s.rss = Some(v),
            b"file" => s.cache = Some(v),
            b"file_mapped" => s.mapped_file = Some(v),
            b"inactive_file" => s.inactive_file = Some(v),
            b"active_file" => s.active_file = Some(v),
            b"kernel" => s.kernel = Some(v),
            b"pgfault" => s.pgfault = Some(v),
            b"pgmajfault" => s.pgmajfault = Some(v),
            _ => {}
        })
    });
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
    let stat = stat.unwrap_or_default();
    // The root has no memory.current: runc (and so cAdvisor and the kubelet) count its usage as
    // memory.stat's anon + file, what v1's usage_in_bytes counts (rss + cache). Without it the
    // node would have no working set, and metrics-server drops a node without one.
    let usage = usage.or_else(|| {
        let (anon, file) = stat.rss.zip(stat.cache)?;
        (ctx.cgroup.as_str() == "/").then_some(anon.saturating_add(file))
    });
    Some(MemoryStats {
        usage_bytes: usage,
        limit_bytes: limit,
        max_usage_bytes: peak,
        working_set_bytes: working_set(usage, stat.inactive_file),
        rss_bytes: stat.rss,
        cache_bytes: stat.cache,
        mapped_file_bytes: stat.mapped_file,
        inactive_file_bytes: stat.inactive_file,
        active_file_bytes: stat.active_file,
        swap_bytes: swap,
        swap_limit_bytes: swap_limit,
        memsw_limit_bytes: None,
        kernel_bytes: stat.kernel,
        failcnt: None,
        pgfault: stat.pgfault,
        pgmajfault: stat.pgmajfault,
        pgfault_local: None,
        pgmajfault_local: None,
        reservation_bytes: reservation,
        oom_kills: events.as_ref().and_then(|e| e.oom_kill),
        events,
        under_oom: None,
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
