//! Pure parsers for the kernel's cgroup file formats (Documentation/admin-guide/cgroup-v2.rst
//! "Interface Files" and the v1 controller docs): bytes in, typed values out.
//! They never panic, never allocate, and know nothing about which file they are given.

use thiserror::Error;

/// Why a file's content could not be understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    #[error("file is empty")]
    Empty,
    #[error("expected an unsigned integer")]
    NotANumber,
    #[error("line does not have the expected shape")]
    Malformed,
}

/// Trims ASCII whitespace (the kernel ends every file with `\n`).
pub fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// Parses a decimal u64 with no sign and no surrounding text. Overflow is an error.
pub fn parse_u64(bytes: &[u8]) -> Result<u64, ParseError> {
    if bytes.is_empty() {
        return Err(ParseError::NotANumber);
    }
    let mut value: u64 = 0;
    for &b in bytes {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return Err(ParseError::NotANumber);
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(digit)))
            .ok_or(ParseError::NotANumber)?;
    }
    Ok(value)
}

/// A file holding one number (`memory.current`, `pids.current`, `cpuacct.usage`).
pub fn single_u64(bytes: &[u8]) -> Result<u64, ParseError> {
    let t = trim(bytes);
    if t.is_empty() {
        return Err(ParseError::Empty);
    }
    parse_u64(t)
}

/// A v2 limit file holding a number or `max` (`memory.max`, `pids.max`); `max` is `None`.
pub fn single_limit(bytes: &[u8]) -> Result<Option<u64>, ParseError> {
    let t = trim(bytes);
    if t.is_empty() {
        return Err(ParseError::Empty);
    }
    if t == b"max" {
        return Ok(None);
    }
    parse_u64(t).map(Some)
}

/// v1 memory limits: "unlimited" is `PAGE_COUNTER_MAX * PAGE_SIZE`, which the kernel prints
/// as 9223372036854771712 on 4 KiB pages (LONG_MAX rounded down to a page). Anything at or
/// above 2^62 cannot be a real limit on any machine, so it is treated as unlimited.
pub fn v1_memory_limit(bytes: &[u8]) -> Result<Option<u64>, ParseError> {
    let v = single_u64(bytes)?;
    Ok(if v >= 1 << 62 { None } else { Some(v) })
}

/// A signed single value where any negative number means "unlimited"
/// (v1 `cpu.cfs_quota_us` is -1 when unset).
pub fn signed_limit(bytes: &[u8]) -> Result<Option<u64>, ParseError> {
    let t = trim(bytes);
    if t.is_empty() {
        return Err(ParseError::Empty);
    }
    match t.split_first() {
        Some((b'-', rest)) => parse_u64(rest).map(|_| None),
        _ => parse_u64(t).map(Some),
    }
}

/// v2 `cpu.max`: `$MAX $PERIOD`, `$MAX` may be `max`. Returns (quota, period) in us.
pub fn cpu_max(bytes: &[u8]) -> Result<(Option<u64>, Option<u64>), ParseError> {
    let t = trim(bytes);
    if t.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut fields = t.split(|b| *b == b' ').filter(|f| !f.is_empty());
    let quota = match fields.next() {
        Some(b"max") => None,
        Some(q) => Some(parse_u64(q)?),
        None => return Err(ParseError::Malformed),
    };
    let period = fields.next().map(parse_u64).transpose()?;
    if fields.next().is_some() {
        return Err(ParseError::Malformed);
    }
    Ok((quota, period))
}

/// Iterates the non-empty lines of a file.
pub fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes
        .split(|b| *b == b'\n')
        .map(trim)
        .filter(|l| !l.is_empty())
}

/// Splits on runs of spaces/tabs.
pub fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| *b == b' ' || *b == b'\t')
        .filter(|f| !f.is_empty())
}

/// A flat-keyed file (`cpu.stat`, `memory.stat`, `memory.events`, `oom_control`): lines of
/// `key value`. Yields each pair; a line of another shape yields `Err` and iteration goes on.
pub fn flat_keyed(bytes: &[u8]) -> impl Iterator<Item = Result<(&[u8], u64), ParseError>> {
    lines(bytes).map(|line| {
        let mut f = fields(line);
        match (f.next(), f.next(), f.next()) {
            (Some(key), Some(value), None) => parse_u64(value).map(|v| (key, v)),
            _ => Err(ParseError::Malformed),
        }
    })
}

/// Counts the non-empty lines (`cgroup.procs`, `tasks`, `cgroup.threads`).
pub fn count_lines(bytes: &[u8]) -> u64 {
    lines(bytes).count() as u64
}

/// The first number of a list file (`cgroup.procs`): the member pid we sample for network.
pub fn first_u64(bytes: &[u8]) -> Option<u64> {
    lines(bytes).next().and_then(|l| parse_u64(l).ok())
}

/// A `MAJ:MIN` device number. Minor numbers go up to 2^20 on Linux; we accept any u64
/// rather than truncate (a fixed-width parse here panicked other readers).
pub fn device_number(field: &[u8]) -> Result<(u64, u64), ParseError> {
    let colon = field
        .iter()
        .position(|b| *b == b':')
        .ok_or(ParseError::Malformed)?;
    let (major, minor) = (&field[..colon], &field[colon + 1..]);
    Ok((parse_u64(major)?, parse_u64(minor)?))
}

/// One line of a v2 nested-keyed file (`io.stat`: `MAJ:MIN rbytes=1 wbytes=2 ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoStatLine {
    pub major: u64,
    pub minor: u64,
    pub rbytes: Option<u64>,
    pub wbytes: Option<u64>,
    pub rios: Option<u64>,
    pub wios: Option<u64>,
}

/// Parses one `io.stat` line. Unknown keys (`dbytes`, iocost's `cost.*`) are ignored so a
/// device with extra keys is never dropped.
pub fn io_stat_line(line: &[u8]) -> Result<IoStatLine, ParseError> {
    let mut f = fields(line);
    let (major, minor) = device_number(f.next().ok_or(ParseError::Malformed)?)?;
    let mut out = IoStatLine {
        major,
        minor,
        ..IoStatLine::default()
    };
    for pair in f {
        let eq = pair
            .iter()
            .position(|b| *b == b'=')
            .ok_or(ParseError::Malformed)?;
        let (key, value) = (&pair[..eq], &pair[eq + 1..]);
        let slot = match key {
            b"rbytes" => &mut out.rbytes,
            b"wbytes" => &mut out.wbytes,
            b"rios" => &mut out.rios,
            b"wios" => &mut out.wios,
            _ => continue,
        };
        *slot = Some(parse_u64(value)?);
    }
    Ok(out)
}

/// Operation column of a v1 blkio file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlkioOp {
    Read,
    Write,
    /// Sync, Async, Discard, Total: summaries we do not need.
    Other,
}

/// One line of a v1 `blkio.throttle.io_service*` file: `MAJ:MIN Op value`. The trailing
/// `Total N` line and blank files yield `Ok(None)`.
pub fn blkio_line(line: &[u8]) -> Result<Option<(u64, u64, BlkioOp, u64)>, ParseError> {
    let mut f = fields(line);
    let first = f.next().ok_or(ParseError::Malformed)?;
    if first == b"Total" {
        return Ok(None);
    }
    let (major, minor) = device_number(first)?;
    let op = match f.next().ok_or(ParseError::Malformed)? {
        b"Read" => BlkioOp::Read,
        b"Write" => BlkioOp::Write,
        _ => BlkioOp::Other,
    };
    let value = parse_u64(f.next().ok_or(ParseError::Malformed)?)?;
    if f.next().is_some() {
        return Err(ParseError::Malformed);
    }
    Ok(Some((major, minor, op, value)))
}

/// One PSI line: `some avg10=0.00 avg60=0.00 avg300=0.00 total=0`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PsiLine {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    pub total_us: u64,
}

/// Which PSI line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsiKind {
    Some,
    Full,
}

/// Parses one PSI line; all four keys are required.
pub fn psi_line(line: &[u8]) -> Result<(PsiKind, PsiLine), ParseError> {
    let mut f = fields(line);
    let kind = match f.next() {
        Some(b"some") => PsiKind::Some,
        Some(b"full") => PsiKind::Full,
        _ => return Err(ParseError::Malformed),
    };
    let (mut avg10, mut avg60, mut avg300, mut total) = (None, None, None, None);
    for pair in f {
        let eq = pair
            .iter()
            .position(|b| *b == b'=')
            .ok_or(ParseError::Malformed)?;
        let (key, value) = (&pair[..eq], &pair[eq + 1..]);
        match key {
            b"avg10" => avg10 = Some(parse_percent(value)?),
            b"avg60" => avg60 = Some(parse_percent(value)?),
            b"avg300" => avg300 = Some(parse_percent(value)?),
            b"total" => total = Some(parse_u64(value)?),
            _ => {}
        }
    }
    match (avg10, avg60, avg300, total) {
        (Some(avg10), Some(avg60), Some(avg300), Some(total_us)) => Ok((
            kind,
            PsiLine {
                avg10,
                avg60,
                avg300,
                total_us,
            },
        )),
        _ => Err(ParseError::Malformed),
    }
}

/// PSI averages are printed `%lu.%02lu`; parse exactly that, without float parsing.
fn parse_percent(value: &[u8]) -> Result<f64, ParseError> {
    let (int, frac) = match value.iter().position(|b| *b == b'.') {
        Some(dot) => (&value[..dot], &value[dot + 1..]),
        None => (value, &b""[..]),
    };
    let int = parse_u64(int)?;
    if frac.len() > 6 {
        return Err(ParseError::NotANumber);
    }
    let frac_value = if frac.is_empty() { 0 } else { parse_u64(frac)? };
    let scale = 10u64.pow(frac.len() as u32);
    // One division of exact integers gives the nearest double to the printed decimal
    // (2.47, not 2.4699999999999998 as int + frac/scale would).
    let scaled = int
        .checked_mul(scale)
        .and_then(|v| v.checked_add(frac_value))
        .ok_or(ParseError::NotANumber)?;
    Ok(scaled as f64 / scale as f64)
}

/// A space-separated list of numbers on one line (v1 `cpuacct.usage_percpu`).
pub fn u64_list(bytes: &[u8]) -> Result<Vec<u64>, ParseError> {
    let t = trim(bytes);
    if t.is_empty() {
        return Err(ParseError::Empty);
    }
    fields(t).map(parse_u64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_means_unlimited_and_numbers_are_limits() {
        assert_eq!(single_limit(b"max\n"), Ok(None));
        assert_eq!(single_limit(b"268435456\n"), Ok(Some(268_435_456)));
        assert_eq!(single_limit(b""), Err(ParseError::Empty));
        assert_eq!(single_limit(b"lots"), Err(ParseError::NotANumber));
    }

    #[test]
    fn v1_unlimited_memory_is_page_rounded_long_max() {
        assert_eq!(v1_memory_limit(b"9223372036854771712\n"), Ok(None));
        assert_eq!(v1_memory_limit(b"67108864\n"), Ok(Some(67_108_864)));
    }

    #[test]
    fn negative_cfs_quota_is_unlimited() {
        assert_eq!(signed_limit(b"-1\n"), Ok(None));
        assert_eq!(signed_limit(b"50000\n"), Ok(Some(50_000)));
        assert_eq!(signed_limit(b"-x"), Err(ParseError::NotANumber));
    }

    #[test]
    fn cpu_max_quota_may_be_max() {
        assert_eq!(cpu_max(b"max 100000\n"), Ok((None, Some(100_000))));
        assert_eq!(
            cpu_max(b"50000 100000\n"),
            Ok((Some(50_000), Some(100_000)))
        );
        assert_eq!(cpu_max(b"50000\n"), Ok((Some(50_000), None)));
        assert_eq!(cpu_max(b"1 2 3"), Err(ParseError::Malformed));
    }

    #[test]
    fn empty_file_is_an_error_not_zero() {
        assert_eq!(single_u64(b""), Err(ParseError::Empty));
        assert_eq!(single_u64(b"\n"), Err(ParseError::Empty));
    }

    #[test]
    fn overflowing_numbers_are_rejected() {
        assert_eq!(single_u64(b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(
            single_u64(b"18446744073709551616"),
            Err(ParseError::NotANumber)
        );
    }

    #[test]
    fn flat_keyed_keeps_going_after_a_short_line() {
        let text = b"usage_usec 10\nnr_periods\nfuture_key 7\n";
        let got: Vec<_> = flat_keyed(text).collect();
        assert_eq!(got[0], Ok((&b"usage_usec"[..], 10)));
        assert_eq!(got[1], Err(ParseError::Malformed));
        assert_eq!(got[2], Ok((&b"future_key"[..], 7)));
    }

    #[test]
    fn io_stat_ignores_unknown_keys_and_keeps_huge_minors() {
        let line = b"259:1048575 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0 cost.vrate=100.00";
        let got = io_stat_line(line).unwrap();
        assert_eq!((got.major, got.minor), (259, 1_048_575));
        assert_eq!(
            (got.rbytes, got.wbytes, got.rios, got.wios),
            (Some(1), Some(2), Some(3), Some(4))
        );
        let missing = io_stat_line(b"8:0 rbytes=5").unwrap();
        assert_eq!(missing.wbytes, None);
        assert!(io_stat_line(b"8:0 rbytes").is_err());
        assert!(io_stat_line(b"80 rbytes=1").is_err());
    }

    #[test]
    fn blkio_total_line_is_skipped() {
        assert_eq!(blkio_line(b"Total 0"), Ok(None));
        assert_eq!(
            blkio_line(b"8:0 Read 4096"),
            Ok(Some((8, 0, BlkioOp::Read, 4096)))
        );
        assert_eq!(
            blkio_line(b"8:0 Sync 1"),
            Ok(Some((8, 0, BlkioOp::Other, 1)))
        );
        assert!(blkio_line(b"8:0 Read").is_err());
    }

    #[test]
    fn psi_lines_parse_and_need_all_keys() {
        let (kind, line) =
            psi_line(b"some avg10=12.13 avg60=2.19 avg300=0.45 total=2639457").unwrap();
        assert_eq!(kind, PsiKind::Some);
        assert!((line.avg10 - 12.13).abs() < 1e-9);
        assert_eq!(line.total_us, 2_639_457);
        assert!(psi_line(b"full avg10=1.00 total=5").is_err());
        assert!(psi_line(b"some").is_err());
        assert!(psi_line(b"half avg10=0.00 avg60=0.00 avg300=0.00 total=0").is_err());
    }

    #[test]
    fn list_files_count_members() {
        assert_eq!(count_lines(b"1\n2\n3\n"), 3);
        assert_eq!(count_lines(b""), 0);
        assert_eq!(first_u64(b"123\n124\n"), Some(123));
    }
}
