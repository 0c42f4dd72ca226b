//! Block IO per device: v2 `io.stat`, v1 `blkio.throttle.io_service_bytes_recursive` and
//! `io_serviced_recursive` (falling back to the non-recursive files on old kernels).
//! Device names are left for the caller: they come from /proc, not from cgroupfs.

use super::{format, Controller, Ctx};
use crate::model::{IoDeviceStats, IoStats};
use std::path::Path;

fn device(devices: &mut Vec<IoDeviceStats>, major: u64, minor: u64) -> &mut IoDeviceStats {
    let idx = match devices
        .iter()
        .position(|d| d.major == major && d.minor == minor)
    {
        Some(i) => i,
        None => {
            devices.push(IoDeviceStats {
                major,
                minor,
                ..IoDeviceStats::default()
            });
            devices.len() - 1
        }
    };
    &mut devices[idx]
}

pub(super) fn read_v2(ctx: &mut Ctx<'_>, dir: &Path) -> Option<IoStats> {
    let mut stats = ctx.with_partial(Controller::Io, dir, "io.stat", |b| {
        let mut devices = Vec::new();
        let mut first_err = None;
        for line in format::lines(b) {
            match format::io_stat_line(line) {
                Ok(l) => devices.push(IoDeviceStats {
                    major: l.major,
                    minor: l.minor,
                    device: None,
                    read_bytes: l.rbytes,
                    write_bytes: l.wbytes,
                    read_ops: l.rios,
                    write_ops: l.wios,
                }),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        (Some(IoStats { devices }), first_err)
    })?;
    stats.devices.sort_by_key(|d| (d.major, d.minor));
    Some(stats)
}

/// Which pair of fields a v1 blkio file fills.
#[derive(Clone, Copy)]
enum Unit {
    Bytes,
    Ops,
}

fn fold_blkio(
    devices: &mut Vec<IoDeviceStats>,
    bytes: &[u8],
    unit: Unit,
) -> Option<format::ParseError> {
    let mut first_err = None;
    for line in format::lines(bytes) {
        match format::blkio_line(line) {
            Ok(Some((major, minor, op, value))) => {
                let d = device(devices, major, minor);
                let slot = match (unit, op) {
                    (Unit::Bytes, format::BlkioOp::Read) => &mut d.read_bytes,
                    (Unit::Bytes, format::BlkioOp::Write) => &mut d.write_bytes,
                    (Unit::Ops, format::BlkioOp::Read) => &mut d.read_ops,
                    (Unit::Ops, format::BlkioOp::Write) => &mut d.write_ops,
                    (_, format::BlkioOp::Other) => continue,
                };
                *slot = Some(value);
            }
            Ok(None) => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    first_err
}

pub(super) fn read_v1(ctx: &mut Ctx<'_>, dir: &Path) -> Option<IoStats> {
    let before = ctx.found;
    let mut devices = Vec::new();
    read_v1_pair(
        ctx,
        dir,
        &mut devices,
        [
            "blkio.throttle.io_service_bytes_recursive",
            "blkio.throttle.io_service_bytes",
        ],
        Unit::Bytes,
    );
    // Operation counts at the full-read cadence; the bytes (the IO rates) every read.
    if ctx.full {
        read_v1_pair(
            ctx,
            dir,
            &mut devices,
            [
                "blkio.throttle.io_serviced_recursive",
                "blkio.throttle.io_serviced",
            ],
            Unit::Ops,
        );
    } else if let Some(last) = ctx.last.and_then(|s| s.io.as_ref()) {
        for was in &last.devices {
            if was.read_ops.is_some() || was.write_ops.is_some() {
                let d = device(&mut devices, was.major, was.minor);
                d.read_ops = was.read_ops;
                d.write_ops = was.write_ops;
            }
        }
    }
    if ctx.found == before {
        return None;
    }
    devices.sort_by_key(|d| (d.major, d.minor));
    Some(IoStats { devices })
}

/// Folds the first of `[recursive, flat]` that exists into `devices`.
fn read_v1_pair(
    ctx: &mut Ctx<'_>,
    dir: &Path,
    devices: &mut Vec<IoDeviceStats>,
    files: [&'static str; 2],
    unit: Unit,
) {
    for file in files {
        let read = ctx.with_partial(Controller::Io, dir, file, |b| {
            let err = fold_blkio(devices, b, unit);
            (Some(()), err)
        });
        if read.is_some() {
            return;
        }
    }
}
