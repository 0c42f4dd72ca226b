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
    let probed = ctx.probe.unified_stat.take();
    let stat = match ctx.reuse(probed) {
        Some(stat) => stat,
        None => ctx
            .with_partial(Controller::Cpu, dir, "cpu.stat", parse_v2_cpu_stat)
            .unwrap_or_default(),
    };
    let (quota_us, period_us) = ctx
        .fresh_or_carried(
            false,
            |ctx| ctx.with(Controller::Cpu, dir, "cpu.max", format::cpu_max),
            |s| s.cpu.as_ref().map(|c| (c.quota_us, c.period_us)),
        )
        .unwrap_or((None, None));
    let weight = ctx.file_or_carried(
        false,
        Controller::Cpu,
        dir,
        "cpu.weight",
        format::single_u64,
        |s| s.cpu.as_ref()?.weight,
    );
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

/// What the idle probe read: the file that says whether any task of the cgroup ran, kept for
/// the read that follows when one did.
#[derive(Default)]
pub(super) struct Probe {
    /// `cpuacct.usage` (v1).
    cpuacct_usage_ns: Option<u64>,
    /// `cpu.stat` of the unified tree (v2, or hybrid without `cpuacct`).
    unified_stat: Option<V2CpuStat>,
}

impl Probe {
    /// The cgroup's CPU usage, ns.
    pub(super) fn usage_ns(&self) -> Option<u64> {
        self.cpuacct_usage_ns.or_else(|| {
            self.unified_stat
                .as_ref()
                .and_then(|s| us_to_ns(s.usage_us))
        })
    }
}

/// Reads the cgroup's CPU usage alone: unchanged since the previous read means none of its
/// tasks ran.
pub(super) fn probe(ctx: &mut Ctx<'_>, layout: &Layout) -> Probe {
    let unified_stat = |ctx: &mut Ctx<'_>, dir: &Path| {
        ctx.with_partial(Controller::Cpu, dir, "cpu.stat", parse_v2_cpu_stat)
    };
    let unified = layout.unified.as_deref();
    match layout.version {
        CgroupVersion::V2 => Probe {
            cpuacct_usage_ns: None,
            unified_stat: unified.and_then(|d| unified_stat(ctx, d)),
        },
        CgroupVersion::V1 | CgroupVersion::Hybrid => {
            let cpuacct_usage_ns =
                layout.v1.cpuacct.as_deref().and_then(|d| {
                    ctx.with(Controller::Cpu, d, "cpuacct.usage", format::single_u64)
                });
            Probe {
                unified_stat: match cpuacct_usage_ns {
                    Some(_) => None,
                    None => unified.and_then(|d| unified_stat(ctx, d)),
                },
                cpuacct_usage_ns,
            }
        }
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
        let probed = ctx.probe.cpuacct_usage_ns.take();
        out.usage_ns = match ctx.reuse(probed) {
            Some(usage) => Some(usage),
            None => ctx.with(Controller::Cpu, dir, "cpuacct.usage", format::single_u64),
        };
        // The user/system split, at the full-read cadence: usage itself is read every time.
        let split = ctx.fresh_or_carried(
            false,
            |ctx| Some(user_and_system_v1(ctx, dir)),
            |s| s.cpu.as_ref().map(|c| (c.user_ns, c.system_ns)),
        );
        (out.user_ns, out.system_ns) = split.unwrap_or((None, None));
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
        // Periods and throttling move only under a quota: without one at the previous read,
        // they are carried over until the next full read.
        let quota_before = ctx.last.and_then(|s| s.cpu.as_ref()?.quota_us).is_some();
        let throttling = ctx.fresh_or_carried(
            quota_before,
            |ctx| {
                ctx.with_partial(Controller::Cpu, dir, "cpu.stat", |b| {
                    fold_flat_keyed(b, |s: &mut V1CpuStat, k, v| match k {
                        b"nr_periods" => s.periods = Some(v),
                        b"nr_throttled" => s.throttled_periods = Some(v),
                        b"throttled_time" => s.throttled_ns = Some(v),
                        _ => {}
                    })
                })
            },
            |s| {
                s.cpu.as_ref().map(|c| V1CpuStat {
                    periods: c.periods,
                    throttled_periods: c.throttled_periods,
                    throttled_ns: c.throttled_ns,
                })
            },
        );
        if let Some(stat) = throttling {
            out.periods = stat.periods;
            out.throttled_periods = stat.throttled_periods;
            out.throttled_ns = stat.throttled_ns;
        }
        out.quota_us = ctx
            .file_or_carried(
                false,
                Controller::Cpu,
                dir,
                "cpu.cfs_quota_us",
                format::signed_limit,
                |s| s.cpu.as_ref().map(|x| x.quota_us),
            )
            .flatten();
        out.period_us = ctx.file_or_carried(
            false,
            Controller::Cpu,
            dir,
            "cpu.cfs_period_us",
            format::single_u64,
            |s| s.cpu.as_ref()?.period_us,
        );
        out.shares = ctx.file_or_carried(
            false,
            Controller::Cpu,
            dir,
            "cpu.shares",
            format::single_u64,
            |s| s.cpu.as_ref()?.shares,
        );
    }
    if let Some(dir) = unified {
        if out.usage_ns.is_none() {
            let probed = ctx.probe.unified_stat.take();
            let stat = match ctx.reuse(probed) {
                Some(stat) => Some(stat),
                None => ctx.with_partial(Controller::Cpu, dir, "cpu.stat", parse_v2_cpu_stat),
            };
            if let Some(stat) = stat {
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

/// User and system time from `cpuacct.stat` ticks, or from `cpuacct.usage_user`/`_sys` where
/// the ticks are missing.
fn user_and_system_v1(ctx: &mut Ctx<'_>, dir: &Path) -> (Option<u64>, Option<u64>) {
    let mut user_ns = None;
    let mut system_ns = None;
    let ticks = ctx.with_partial(Controller::Cpu, dir, "cpuacct.stat", |b| {
        fold_flat_keyed(b, |s: &mut V1CpuacctStat, k, v| match k {
            b"user" => s.user_ticks = Some(v),
            b"system" => s.system_ticks = Some(v),
            _ => {}
        })
    });
    if let Some(t) = ticks {
        let to_ns = |t: Option<u64>| t.map(|v| v.saturating_mul(NS_PER_USER_HZ_TICK));
        user_ns = to_ns(t.user_ticks);
        system_ns = to_ns(t.system_ticks);
    }
    if user_ns.is_none() {
        user_ns = ctx.with(
            Controller::Cpu,
            dir,
            "cpuacct.usage_user",
            format::single_u64,
        );
    }
    if system_ns.is_none() {
        system_ns = ctx.with(
            Controller::Cpu,
            dir,
            "cpuacct.usage_sys",
            format::single_u64,
        );
    }
    (user_ns, system_ns)
}
