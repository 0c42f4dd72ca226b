//! The pids controller: `pids.current` and `pids.max` (same files on v1 and v2).

use super::{format, Controller, Ctx};
use crate::model::PidsStats;
use std::path::Path;

pub(super) fn read(ctx: &mut Ctx<'_>, dir: &Path) -> Option<PidsStats> {
    let before = ctx.found;
    let current = ctx.with(Controller::Pids, dir, "pids.current", format::single_u64);
    let limit = ctx
        .file_or_carried(
            false,
            Controller::Pids,
            dir,
            "pids.max",
            format::single_limit,
            |s| s.pids.as_ref().map(|x| x.limit),
        )
        .flatten();
    (ctx.found != before).then_some(PidsStats { current, limit })
}
