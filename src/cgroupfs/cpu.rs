//! CPU accounting: v1 `cpuacct.*` + `cpu.*` (or the unified `cpu.stat` on hybrid hosts) and
//! v2 `cpu.stat`/`cpu.max`/`cpu.weight`, all normalised to nanoseconds.

use super::{fold_flat_keyed, format, Controller, Ctx, Layout};
use crate::model::{CgroupVersion, CpuStats};
use std::path::Path;

/// `cpuacct.stat` counts USER_HZ ticks; USER_HZ is 100 on every architecture Linux exposes
/// it for (it is fixed ABI, independent of CONFIG_HZ), so one tick is 10 ms.
const NS_PER_USER_HZ_TICK: u64 = 10_000_000;
const NS_PER_US: u64 = 1_000;

#[derive(Default)]
struct V2CpuStat {
    usage_us: Option<u64>,
    user_us: Option<u64>,
    system_us: Option<u64>,
    periods: Option<u64>,
    throttled_periods: Option<u64>,
    throttled_us: Option<u64>,
}

fn parse_v2_cpu_stat(b: &[u8]) -> (Option<V2CpuStat>, Option<format::ParseError>) {
    fold_flat_keyed(b, |s: &mut V2CpuStat, k, v| match k {
        b"usage_usec" => s.usage_us = Some(v),
        b"user_usec" => s.user_us = Some(v),
        b"system_usec" => s.system_us = Some(v),
        b"nr_periods" => s.periods = Some(v),
        b"nr_throttled" => s.throttled_periods = Some(v),
        b"throttled_usec" => s.throttled_us = Some(v),
        _ => {}
    })
}

fn us_to_ns(v: Option<u64>) -> Option<u64> {
    v.map(|us| us.saturating_mul(NS_PER_US))
}

pub(super) fn read_v2(ctx: &mut Ctx<'_>, dir: &Path) -> Option<CpuStats> {
    let before = ctx.found;
    let stat = ctx
        .with_partial(Controller::Cpu, dir, "cpu.stat", parse_v2_cpu_stat)
        .unwrap_or_default();
    let (quota_us, period_us) = ctx
        .limit(Controller::Cpu, dir, "cpu.max", format::cpu_max)
        .unwrap_or((None, None));
    let weight = ctx.limit(Controller::Cpu, dir, "cpu.weight", format::single_u64);
    if ctx.found == before {
        return None;
    }
    Some(CpuStats {
        usage_ns: us_to_ns(stat.usage_us),
        user_ns: us_to_ns(stat.user_us),
        system_ns: us_to_ns(stat.system_us),
        per_cpu_usage_ns: None,
        periods: stat.periods,
        throttled_periods: stat.throttled_periods,
        throttled_ns: us_to_ns(stat.throttled_us),
        quota_us,
        period_us,
        shares: None,
        weight,
    })
}

/// CPU usage read exactly as [`read_v1`]/[`read_v2`] report it, from the one file it comes
/// from: the cheap probe of whether any task of the cgroup ran since the previous read.
pub(super) fn usage_ns(ctx: &mut Ctx<'_>, layout: &Layout) -> Option<u64> {
    let unified_usage = |ctx: &mut Ctx<'_>, dir: &Path| {
        ctx.with_partial(Controller::Cpu, dir, "cpu.stat", parse_v2_cpu_stat)
            .and_then(|s| us_to_ns(s.usage_us))
    };
    let unified = layout.unified.as_deref();
    match layout.version {
        CgroupVersion::V2 => unified.and_then(|d| unified_usage(ctx, d)),
        CgroupVersion::V1 | CgroupVersion::Hybrid => layout
            .v1
            .cpuacct
            .as_deref()
            .and_then(|d| ctx.with(Controller::Cpu, d, "cpuacct.usage", format::single_u64))
            .or_else(|| unified.and_then(|d| unified_usage(ctx, d))),
    }
}

#[derive(Default)]
struct V1CpuStat {
    periods: Option<u64>,
    throttled_periods: Option<u64>,
    throttled_ns: Option<u64>,
}

#[derive(Default)]
struct V1CpuacctStat {
    user_ticks: Option<u64>,
    system_ticks: Option<u64>,
}

pub(super) fn read_v1(
    ctx: &mut Ctx<'_>,
    cpu: Option<&Path>,
    cpuacct: Option<&Path>,
    unified: Option<&Path>,
) -> Option<CpuStats> {
    let before = ctx.found;
    let mut out = CpuStats::default();
    if let Some(dir) = cpuacct {
        out.usage_ns = ctx.with(Controller::Cpu, dir, "cpuacct.usage", format::single_u64);
        // User and system time from cpuacct.stat (ticks), as cAdvisor and runc read them: on
        // current kernels cpuacct.usage_user/_sys come from a different clock and do not add
        // up to cpuacct.usage (measured on 6.18: 0.076 + 0.388 s against 0.996 s), while
        // cpuacct.stat's ticks do. The ns files are only a fallback for a missing stat file.
        let ticks = ctx.with_partial(Controller::Cpu, dir, "cpuacct.stat", |b| {
            fold_flat_keyed(b, |s: &mut V1CpuacctStat, k, v| match k {
                b"user" => s.user_ticks = Some(v),
                b"system" => s.system_ticks = Some(v),
                _ => {}
            })
        });
        if let Some(t) = ticks {
            let to_ns = |t: Option<u64>| t.map(|v| v.saturating_mul(NS_PER_USER_HZ_TICK));
            out.user_ns = to_ns(t.user_ticks);
            out.system_ns = to_ns(t.system_ticks);
        }
        if out.user_ns.is_none() {
            out.user_ns = ctx.with(
                Controller::Cpu,
                dir,
                "cpuacct.usage_user",
                format::single_u64,
            );
        }
        if out.system_ns.is_none() {
            out.system_ns = ctx.with(
                Controller::Cpu,
                dir,
                "cpuacct.usage_sys",
                format::single_u64,
            );
        }
        if ctx.per_cpu {
            out.per_cpu_usage_ns = ctx.with(
                Controller::Cpu,
                dir,
                "cpuacct.usage_percpu",
                format::u64_list,
            );
        }
    }
    if let Some(dir) = cpu {
        if let Some(stat) = ctx.with_partial(Controller::Cpu, dir, "cpu.stat", |b| {
            fold_flat_keyed(b, |s: &mut V1CpuStat, k, v| match k {
                b"nr_periods" => s.periods = Some(v),
                b"nr_throttled" => s.throttled_periods = Some(v),
                b"throttled_time" => s.throttled_ns = Some(v),
                _ => {}
            })
        }) {
            out.periods = stat.periods;
            out.throttled_periods = stat.throttled_periods;
            out.throttled_ns = stat.throttled_ns;
        }
        out.quota_us = ctx
            .limit(
                Controller::Cpu,
                dir,
                "cpu.cfs_quota_us",
                format::signed_limit,
            )
            .flatten();
        out.period_us = ctx.limit(
            Controller::Cpu,
            dir,
            "cpu.cfs_period_us",
            format::single_u64,
        );
        out.shares = ctx.limit(Controller::Cpu, dir, "cpu.shares", format::single_u64);
    }
    // Hybrid hosts: the unified tree keeps per-cgroup cpu.stat even with no v2 controllers.
    // Use it only where v1 cpuacct gave nothing (cpuacct is the finer source).
    if let Some(dir) = unified {
        if out.usage_ns.is_none() {
            if let Some(stat) =
                ctx.with_partial(Controller::Cpu, dir, "cpu.stat", parse_v2_cpu_stat)
            {
                out.usage_ns = us_to_ns(stat.usage_us);
                out.user_ns = out.user_ns.or(us_to_ns(stat.user_us));
                out.system_ns = out.system_ns.or(us_to_ns(stat.system_us));
            }
        }
    }
    if ctx.found == before {
        return None;
    }
    Some(out)
}
