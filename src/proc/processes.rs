//! What `/proc/<pid>/{stat,status,cmdline}` (under `--proc-root`) say about given pids: pure
//! parsers, and a reader that turns them into `model::ProcessInfo`. Knows nothing about
//! cgroups or containers: callers hand it pids.

use crate::cgroupfs::format::{self, ParseError};
use crate::files::FileReader;
use crate::model::{OwnProcess, ProcessInfo};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A `/proc/<pid>` file that exists but cannot be read or understood.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse {path}: {kind}")]
    Parse { path: PathBuf, kind: ParseError },
}

/// The fields of `/proc/<pid>/stat` cgscope uses (proc(5)); times in clock ticks (USER_HZ).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: u64,
    /// The executable's name (at most 15 bytes in the kernel), control bytes shown as `?`.
    pub comm: String,
    pub state: char,
    pub ppid: u64,
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    pub num_threads: u64,
    /// Start time, ticks after boot.
    pub starttime_ticks: u64,
}

impl Stat {
    /// User plus system time, ticks; the sort key of a process list.
    pub fn cpu_ticks(&self) -> u64 {
        self.utime_ticks.saturating_add(self.stime_ticks)
    }
}

/// Parses `/proc/<pid>/stat`: `pid (comm) state ppid ... utime stime ... num_threads ...
/// starttime ...`. `comm` may hold spaces and parentheses (`a) (b c` is a valid name), so it
/// ends at the *last* `)`; the fields after it never contain one.
pub fn parse_stat(bytes: &[u8]) -> Result<Stat, ParseError> {
    let t = format::trim(bytes);
    if t.is_empty() {
        return Err(ParseError::Empty);
    }
    let open = t
        .iter()
        .position(|b| *b == b'(')
        .ok_or(ParseError::Malformed)?;
    let close = t
        .iter()
        .rposition(|b| *b == b')')
        .ok_or(ParseError::Malformed)?;
    let comm = t.get(open + 1..close).ok_or(ParseError::Malformed)?;
    let pid = format::parse_u64(format::trim(&t[..open]))?;
    let mut f = format::fields(&t[close + 1..]);
    let state = match f.next() {
        Some(&[s]) if s.is_ascii_graphic() => char::from(s),
        _ => return Err(ParseError::Malformed),
    };
    let num = |field: Option<&[u8]>| {
        field
            .ok_or(ParseError::Malformed)
            .and_then(format::parse_u64)
    };
    // Field numbers of proc(5), counted from 1 at pid: state is 3 and the iterator stands at 4.
    let ppid = num(f.next())?; // 4
    let utime_ticks = num(f.nth(9))?; // 14
    let stime_ticks = num(f.next())?; // 15
    let num_threads = num(f.nth(4))?; // 20
    let starttime_ticks = num(f.nth(1))?; // 22
    Ok(Stat {
        pid,
        comm: printable(comm),
        state,
        ppid,
        utime_ticks,
        stime_ticks,
        num_threads,
        starttime_ticks,
    })
}

/// `VmRSS` of `/proc/<pid>/status`, bytes. `None` when the line is absent (kernel threads and
/// zombies have no memory map) or garbled.
pub fn parse_status_rss_bytes(bytes: &[u8]) -> Option<u64> {
    let line = format::lines(bytes).find(|l| l.starts_with(b"VmRSS:"))?;
    let mut f = format::fields(&line[b"VmRSS:".len()..]);
    let value = format::parse_u64(f.next()?).ok()?;
    let scale = match (f.next(), f.next()) {
        (Some(b"kB"), None) => 1024,
        _ => return None,
    };
    value.checked_mul(scale)
}

/// `/proc/<pid>/cmdline`: the arguments, NUL-separated (usually with a trailing NUL), joined
/// by spaces. `None` when empty (kernel threads, zombies). Kept to `max_bytes`, ending in `…`
/// when cut; control bytes become `?` as `ps` shows them. Programs that rewrite their argv
/// (`nginx: worker process`) come out as they wrote it.
pub fn parse_cmdline(bytes: &[u8], max_bytes: usize) -> Option<String> {
    let end = bytes.iter().rposition(|b| *b != 0)? + 1;
    // A few bytes over the cap so that a character cut by it is dropped, not mangled.
    let head = &bytes[..end.min(max_bytes.saturating_add(4))];
    let mut text: String = String::from_utf8_lossy(head)
        .chars()
        .map(|c| match c {
            '\0' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect();
    if end > max_bytes || text.len() > max_bytes {
        let mut cut = max_bytes.saturating_sub('…'.len_utf8());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    Some(text)
}

/// `btime` of `/proc/stat`: boot time, seconds since the Unix epoch.
pub fn parse_btime(bytes: &[u8]) -> Option<u64> {
    format::lines(bytes).find_map(|l| {
        let mut f = format::fields(l);
        match (f.next(), f.next(), f.next()) {
            (Some(b"btime"), Some(v), None) => format::parse_u64(v).ok(),
            _ => None,
        }
    })
}

/// Clock ticks to ns; `None` when `ticks_per_s` is 0 or the result does not fit.
pub fn ticks_to_ns(ticks: u64, ticks_per_s: u64) -> Option<u64> {
    if ticks_per_s == 0 {
        return None;
    }
    u64::try_from(u128::from(ticks) * 1_000_000_000 / u128::from(ticks_per_s)).ok()
}

/// A process from its parsed files. `None` when its CPU times do not fit in ns (no real
/// process runs for 584 years: the stat file was garbage).
pub fn process_info(
    stat: &Stat,
    rss_bytes: Option<u64>,
    cmdline: Option<String>,
    ticks_per_s: u64,
    boot_unix_s: Option<u64>,
) -> Option<ProcessInfo> {
    let start_unix_s = boot_unix_s
        .zip(stat.starttime_ticks.checked_div(ticks_per_s))
        .and_then(|(boot, after)| boot.checked_add(after));
    Some(ProcessInfo {
        pid: stat.pid,
        ppid: stat.ppid,
        command: cmdline.unwrap_or_else(|| format!("[{}]", stat.comm)),
        state: stat.state,
        threads: stat.num_threads,
        user_ns: ticks_to_ns(stat.utime_ticks, ticks_per_s)?,
        system_ns: ticks_to_ns(stat.stime_ticks, ticks_per_s)?,
        start_unix_s,
        rss_bytes,
    })
}

/// The kernel's USER_HZ, the unit of the times in `/proc/<pid>/stat`. The kernel passes it to
/// every process (AT_CLKTCK), and a container shares its host's kernel, so our own value is
/// the one that applies to the proc root we read. 100 if the aux vector lacks it, which is
/// USER_HZ on every architecture Linux builds for but alpha.
pub fn clock_ticks_per_second() -> u64 {
    match rustix::param::clock_ticks_per_second() {
        0 => 100,
        n => n,
    }
}

/// Reads processes of one proc tree: one per process-list request, and the sampler's own
/// (for `<proc>/self` only, once per tick).
#[derive(Debug)]
pub struct ProcessReader {
    root: PathBuf,
    ticks_per_s: u64,
    boot_unix_s: Option<u64>,
    reader: FileReader,
    path: PathBuf,
}

impl ProcessReader {
    /// A reader of `proc_root` whose stat times are in `ticks_per_s` units (see
    /// [`clock_ticks_per_second`]); reads the boot time once.
    pub fn new(proc_root: &Path, ticks_per_s: u64) -> Self {
        let mut reader = FileReader::new();
        let boot_unix_s = match reader.read(&proc_root.join("stat")) {
            Ok(Some(bytes)) => parse_btime(bytes),
            _ => None,
        };
        ProcessReader {
            root: proc_root.to_path_buf(),
            ticks_per_s,
            boot_unix_s,
            reader,
            path: PathBuf::with_capacity(64),
        }
    }

    /// Boot time from `<proc>/stat`, seconds since the Unix epoch.
    pub fn boot_unix_s(&self) -> Option<u64> {
        self.boot_unix_s
    }

    fn set_path(&mut self, pid: u64, file: &str) {
        self.path.as_mut_os_string().clear();
        self.path.push(&self.root);
        self.path.push(pid.to_string());
        self.path.push(file);
    }

    /// `<proc>/<pid>/<file>` through `parse`; `Ok(None)` when the process is gone.
    fn read<T>(
        &mut self,
        pid: u64,
        file: &str,
        parse: impl FnOnce(&[u8]) -> Result<T, ParseError>,
    ) -> Result<Option<T>, Error> {
        self.set_path(pid, file);
        match self.reader.read(&self.path) {
            Ok(None) => Ok(None),
            Ok(Some(bytes)) => parse(bytes).map(Some).map_err(|kind| Error::Parse {
                path: self.path.clone(),
                kind,
            }),
            Err(source) => Err(Error::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// `/proc/<pid>/stat`; `Ok(None)` when the process is gone. Enough to rank by CPU time
    /// before reading the rest of the busiest ones.
    pub fn stat(&mut self, pid: u64) -> Result<Option<Stat>, Error> {
        // The file names its own pid; another one means garbage, and `complete` must not be
        // sent to read some other process's files.
        self.read(pid, "stat", |b| {
            parse_stat(b).and_then(|s| {
                if s.pid == pid {
                    Ok(s)
                } else {
                    Err(ParseError::Malformed)
                }
            })
        })
    }

    /// The process behind `stat` (read just before), completed from `status` and `cmdline`;
    /// `Ok(None)` when it has exited in the meantime.
    pub fn complete(&mut self, stat: &Stat) -> Result<Option<ProcessInfo>, Error> {
        let pid = stat.pid;
        let Some(rss_bytes) = self.read(pid, "status", |b| Ok(parse_status_rss_bytes(b)))? else {
            return Ok(None);
        };
        let Some(cmdline) = self.read(pid, "cmdline", |b| {
            Ok(parse_cmdline(b, ProcessInfo::MAX_COMMAND_BYTES))
        })?
        else {
            return Ok(None);
        };
        match process_info(stat, rss_bytes, cmdline, self.ticks_per_s, self.boot_unix_s) {
            Some(info) => Ok(Some(info)),
            None => {
                self.set_path(pid, "stat");
                Err(Error::Parse {
                    path: self.path.clone(),
                    kind: ParseError::Malformed,
                })
            }
        }
    }

    /// cgscope's own process, as `<proc>/self` (our pid in that proc mount's namespace)
    /// shows it; `None` when the proc tree has no `self` (a captured tree).
    pub fn own(&mut self) -> Option<OwnProcess> {
        let target = self
            .reader
            .read_link(&self.root.join("self"))
            .ok()
            .flatten()?;
        let pid = format::parse_u64(target.as_os_str().as_encoded_bytes()).ok()?;
        let info = self.process(pid).ok().flatten()?;
        self.set_path(pid, "fd");
        // Since Linux 6.2 the size of `fd` is the count of open descriptors: one stat instead
        // of listing thousands of entries (the reader keeps one directory per cgroup and
        // hierarchy open), which had cost 7% of a busy sampler's CPU. Older kernels say 0
        // there; those are listed, the listing's own descriptor not counted.
        let open_fds = match std::fs::metadata(&self.path) {
            Ok(m) if m.len() > 0 => Some(m.len()),
            _ => std::fs::read_dir(&self.path)
                .ok()
                .map(|dir| (dir.filter(Result::is_ok).count() as u64).saturating_sub(1)),
        };
        let max_fds = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        Some(OwnProcess {
            cpu_ns: info.cpu_ns(),
            resident_bytes: info.rss_bytes,
            open_fds,
            max_fds,
            start_unix_s: info.start_unix_s,
        })
    }

    /// Everything about `pid`; `Ok(None)` when it is gone.
    pub fn process(&mut self, pid: u64) -> Result<Option<ProcessInfo>, Error> {
        match self.stat(pid)? {
            Some(stat) => self.complete(&stat),
            None => Ok(None),
        }
    }
}

/// `bytes` as text, control bytes shown as `?` (a name can hold any byte but NUL and `/`).
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A real line (bash on 6.1), fields 1-52.
    const BASH: &[u8] = b"1234 (bash) S 1200 1234 1234 34816 5678 4194560 2631 21847 0 1 7 3 25 11 20 0 1 0 4521 8716288 1293 18446744073709551615 94660571254784 94660572166925 140727186435936 0 0 0 65536 3670020 1266777851 1 0 0 17 1 0 0 0 0 0 94660572412048 94660572460644 94660576755712 140727186440131 140727186440136 140727186440136 140727186444270 0\n";

    #[test]
    fn stat_fields_are_read_by_their_proc5_numbers() {
        let s = parse_stat(BASH).unwrap();
        assert_eq!(
            s,
            Stat {
                pid: 1234,
                comm: "bash".into(),
                state: 'S',
                ppid: 1200,
                utime_ticks: 7,
                stime_ticks: 3,
                num_threads: 1,
                starttime_ticks: 4521,
            }
        );
    }

    #[test]
    fn comm_with_spaces_and_parentheses_ends_at_the_last_paren() {
        let line = b"42 (a) (b c) R 1 42 42 0 -1 4194304 0 0 0 0 250 50 0 0 20 0 3 0 900 0 0\n";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.comm, "a) (b c");
        assert_eq!((s.state, s.ppid), ('R', 1));
        assert_eq!((s.utime_ticks, s.stime_ticks, s.num_threads), (250, 50, 3));
        assert_eq!(s.starttime_ticks, 900);
        let empty = parse_stat(b"7 () S 1 0 0 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 0\n").unwrap();
        assert_eq!(empty.comm, "");
    }

    #[test]
    fn negative_fields_we_skip_do_not_matter() {
        // tpgid -1, priority -51 and nice -20 (a real-time thread); none is parsed.
        let line = b"9 (rt) S 2 0 0 0 -1 69238848 0 0 0 0 0 8 0 0 -51 -20 1 0 12 0 0\n";
        assert_eq!(parse_stat(line).unwrap().stime_ticks, 8);
    }

    #[test]
    fn garbled_or_truncated_stat_is_an_error() {
        assert_eq!(parse_stat(b""), Err(ParseError::Empty));
        assert_eq!(parse_stat(b"garbage"), Err(ParseError::Malformed));
        assert_eq!(parse_stat(b"1 )x( S 1"), Err(ParseError::Malformed));
        assert_eq!(parse_stat(b"x (sh) S 1"), Err(ParseError::NotANumber));
        assert_eq!(parse_stat(b"1 (sh) SS 1"), Err(ParseError::Malformed));
        assert!(parse_stat(&BASH[..60]).is_err(), "cut before starttime");
        assert_eq!(parse_stat(b"1 (sh) S -1"), Err(ParseError::NotANumber));
    }

    #[test]
    fn huge_tick_counts_parse_but_do_not_fit_in_ns() {
        let m = u64::MAX;
        let line = format!("5 (x) R 1 0 0 0 -1 0 0 0 0 0 {m} 1 0 0 20 0 {m} 0 {m} 0 0");
        let s = parse_stat(line.as_bytes()).unwrap();
        assert_eq!((s.utime_ticks, s.num_threads, s.starttime_ticks), (m, m, m));
        assert_eq!(s.cpu_ticks(), m, "saturates");
        assert_eq!(process_info(&s, None, None, 100, Some(1)), None);
        let over = format!("5 (x) R 1 0 0 0 -1 0 0 0 0 0 1{m} 1 0 0 20 0 1 0 1 0 0");
        assert_eq!(parse_stat(over.as_bytes()), Err(ParseError::NotANumber));
    }

    #[test]
    fn rss_is_vmrss_in_bytes_and_absent_for_kernel_threads() {
        let user = b"Name:\tsleep\nState:\tS (sleeping)\nVmPeak:\t    8216 kB\nVmRSS:\t     972 kB\nThreads:\t1\n";
        assert_eq!(parse_status_rss_bytes(user), Some(972 * 1024));
        let kthread = b"Name:\tkworker/0:1\nState:\tI (idle)\nThreads:\t1\n";
        assert_eq!(parse_status_rss_bytes(kthread), None);
        assert_eq!(parse_status_rss_bytes(b"VmRSS:\tlots kB\n"), None);
        assert_eq!(parse_status_rss_bytes(b"VmRSS:\t1 MB\n"), None);
        assert_eq!(
            parse_status_rss_bytes(b"VmRSS: 18446744073709551615 kB\n"),
            None
        );
    }

    #[test]
    fn cmdline_joins_arguments_with_or_without_a_trailing_nul() {
        assert_eq!(
            parse_cmdline(b"sleep\x00600\x00", 100).as_deref(),
            Some("sleep 600")
        );
        assert_eq!(
            parse_cmdline(b"nginx: worker process", 100).as_deref(),
            Some("nginx: worker process")
        );
        assert_eq!(
            parse_cmdline(b"sh\x00-c\x00while :; do :; done\x00\x00\x00", 100).as_deref(),
            Some("sh -c while :; do :; done")
        );
        assert_eq!(
            parse_cmdline(b"a\x00\x00b\x00", 100).as_deref(),
            Some("a  b")
        );
        assert_eq!(parse_cmdline(b"bell\x07\n", 100).as_deref(), Some("bell??"));
    }

    #[test]
    fn empty_cmdline_is_none_and_the_command_falls_back_to_comm() {
        assert_eq!(parse_cmdline(b"", 100), None);
        assert_eq!(parse_cmdline(b"\x00\x00", 100), None);
        let s = parse_stat(b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 3 0 0 20 0 1 0 2 0 0")
            .unwrap();
        let p = process_info(&s, None, None, 100, Some(1_700_000_000)).unwrap();
        assert_eq!(p.command, "[kthreadd]");
        assert_eq!((p.rss_bytes, p.system_ns), (None, 30_000_000));
        assert_eq!(p.start_unix_s, Some(1_700_000_000));
    }

    #[test]
    fn long_cmdlines_are_cut_on_a_character_boundary() {
        let long = "é".repeat(3000);
        let cut = parse_cmdline(long.as_bytes(), 4096).unwrap();
        assert!(cut.len() <= 4096 && cut.ends_with('…'), "{}", cut.len());
        assert!(cut.trim_end_matches('…').chars().all(|c| c == 'é'));
        let exact = "x".repeat(4096);
        assert_eq!(parse_cmdline(exact.as_bytes(), 4096), Some(exact));
    }

    #[test]
    fn btime_and_tick_conversion() {
        let stat = b"cpu  1 2 3 4 5 6 7 0 0 0\ncpu0 1 2 3 4 5 6 7 0 0 0\nintr 5\nbtime 1700000000\nprocesses 9\n";
        assert_eq!(parse_btime(stat), Some(1_700_000_000));
        assert_eq!(parse_btime(b"btime\nbtime x\n"), None);
        assert_eq!(ticks_to_ns(250, 100), Some(2_500_000_000));
        assert_eq!(ticks_to_ns(3, 300), Some(10_000_000));
        assert_eq!(ticks_to_ns(1, 0), None);
        assert_eq!(ticks_to_ns(u64::MAX, 1), None);
    }

    #[test]
    fn start_time_is_boot_time_plus_ticks() {
        let s = parse_stat(BASH).unwrap();
        let p = process_info(&s, Some(4096), Some("bash".into()), 100, Some(1_000)).unwrap();
        assert_eq!(p.start_unix_s, Some(1_045));
        assert_eq!((p.user_ns, p.system_ns), (70_000_000, 30_000_000));
        assert_eq!(p.cpu_ns(), 100_000_000);
        let no_boot = process_info(&s, None, None, 100, None).unwrap();
        assert_eq!(no_boot.start_unix_s, None);
    }

    #[test]
    fn the_reader_skips_vanished_pids_and_reads_a_fixture_tree() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("stat"), "btime 1000\n").unwrap();
        let p = root.path().join("1234");
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("stat"), BASH).unwrap();
        std::fs::write(p.join("status"), "VmRSS:\t 8 kB\n").unwrap();
        std::fs::write(p.join("cmdline"), "-bash\0").unwrap();
        let mut r = ProcessReader::new(root.path(), 100);
        assert_eq!(r.boot_unix_s(), Some(1000));
        let got = r.process(1234).unwrap().unwrap();
        assert_eq!(got.command, "-bash");
        assert_eq!(got.rss_bytes, Some(8192));
        assert_eq!(got.start_unix_s, Some(1045));
        assert!(r.process(99).unwrap().is_none(), "a gone pid is no error");
        std::fs::write(p.join("stat"), &BASH[1..]).unwrap();
        assert!(
            r.process(1234).is_err(),
            "stat of pid 234 in the dir of 1234"
        );
        std::fs::write(p.join("stat"), "nonsense").unwrap();
        let err = r.process(1234).unwrap_err().to_string();
        assert!(err.contains("1234/stat"), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), max in 0usize..64) {
            if let Ok(s) = parse_stat(&bytes) {
                let _ = process_info(&s, None, None, 100, Some(0));
            }
            let _ = parse_status_rss_bytes(&bytes);
            if let Some(c) = parse_cmdline(&bytes, max) {
                prop_assert!(c.len() <= max.max('…'.len_utf8()), "{} > {}", c.len(), max);
            }
            let _ = parse_btime(&bytes);
        }

        #[test]
        fn stat_round_trips_any_comm_and_numbers(
            comm in proptest::collection::vec(any::<u8>().prop_filter("no NUL", |b| *b != 0), 0..16),
            pid in any::<u64>(), ppid in any::<u64>(), utime in any::<u64>(), stime in any::<u64>(),
            threads in any::<u64>(), start in any::<u64>(),
            state in proptest::sample::select(b"RSDZTtXIPKW".to_vec()),
        ) {
            let mut line = format!("{pid} (").into_bytes();
            line.extend_from_slice(&comm);
            line.extend_from_slice(
                format!(") {} {ppid} 1 1 0 -1 0 0 0 0 0 {utime} {stime} 0 0 20 -5 {threads} 0 {start} 4096 1\n", state as char).as_bytes(),
            );
            let s = parse_stat(&line).unwrap();
            prop_assert_eq!((s.pid, s.ppid, s.utime_ticks, s.stime_ticks), (pid, ppid, utime, stime));
            prop_assert_eq!((s.num_threads, s.starttime_ticks, s.state), (threads, start, state as char));
            prop_assert_eq!(s.comm, printable(&comm));
        }

        #[test]
        fn cmdline_never_exceeds_its_cap(args in proptest::collection::vec("[ -~é]{0,40}", 0..30), max in 1usize..200) {
            let raw: Vec<u8> = args.iter().flat_map(|a| a.bytes().chain([0])).collect();
            if let Some(c) = parse_cmdline(&raw, max.max(3)) {
                prop_assert!(c.len() <= max.max(3), "{} > {}", c.len(), max);
            }
        }
    }
}
