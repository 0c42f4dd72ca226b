//! Pressure stall information from a cgroup's `{cpu,memory,io}.pressure` files (v2, and the
//! unified tree of hybrid hosts). Format: Documentation/accounting/psi.rst.

use super::{format, Controller, Ctx};
use crate::model::{Pressure, PressureLine, PressureStats};
use std::path::Path;

fn parse(bytes: &[u8]) -> (Option<Pressure>, Option<format::ParseError>) {
    let mut out = Pressure::default();
    let mut first_err = None;
    for line in format::lines(bytes) {
        match format::psi_line(line) {
            Ok((kind, l)) => {
                let value = PressureLine {
                    avg10_pct: l.avg10,
                    avg60_pct: l.avg60,
                    avg300_pct: l.avg300,
                    total_us: l.total_us,
                };
                match kind {
                    format::PsiKind::Some => out.some = Some(value),
                    format::PsiKind::Full => out.full = Some(value),
                }
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    (Some(out), first_err)
}

pub(super) fn read(ctx: &mut Ctx<'_>, dir: &Path) -> Option<PressureStats> {
    let before = ctx.found;
    let cpu = ctx.with_partial(Controller::Pressure, dir, "cpu.pressure", parse);
    // No cpu.pressure: PSI is off, or (hybrid) the cgroup has no unified counterpart. Skip
    // the two other opens, which would fail the same way on every tick.
    if ctx.found == before {
        return None;
    }
    let memory = ctx.with_partial(Controller::Pressure, dir, "memory.pressure", parse);
    let io = ctx.with_partial(Controller::Pressure, dir, "io.pressure", parse);
    (ctx.found != before).then_some(PressureStats { cpu, memory, io })
}
