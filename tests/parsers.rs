//! Property tests: every kernel-format parser takes arbitrary bytes without panicking, and
//! well-formed input round-trips to the exact values written. Also feeds garbage through
//! the whole reader: a garbled file degrades one field, is counted, and never panics.

use crate::support::parsers;
use cgscope::cgroupfs::format;
use cgscope::cgroupfs::CgroupFs;
use cgscope::model::CgroupPath;
use procfs_core::FromRead;
use proptest::prelude::*;

/// Every parser of ours, plus the /proc/<pid>/net/dev parser we borrow from procfs-core.
fn every_parser(bytes: &[u8]) {
    parsers::every_parser(bytes);
    let _ = procfs_core::net::InterfaceDeviceStatus::from_read(bytes);
}

/// Bytes that look like kernel files often enough to reach deep parser branches.
fn kernelish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"max".to_vec()),
        Just(b"some".to_vec()),
        Just(b"full".to_vec()),
        Just(b"Total".to_vec()),
        Just(b"Read".to_vec()),
        Just(b"Write".to_vec()),
        Just(b"avg10=".to_vec()),
        Just(b"total=".to_vec()),
        Just(b"rbytes=".to_vec()),
        Just(b":".to_vec()),
        Just(b".".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"-".to_vec()),
        Just(b"(".to_vec()),
        Just(b")".to_vec()),
        Just(b"VmRSS:".to_vec()),
        Just(b"kB".to_vec()),
        Just(b"btime".to_vec()),
        Just(b"\0".to_vec()),
        "[0-9]{1,25}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..4),
    ];
    proptest::collection::vec(token, 0..40).prop_map(|v| v.concat())
}

/// The input that showed procfs-core's `Meminfo` panicking (a key sliced inside a UTF-8
/// character); kept as a regression for whatever parses meminfo.
#[test]
fn meminfo_with_a_non_ascii_key_does_not_panic() {
    every_parser("é 5\nMemTotal: 18446744073709551615 kB\n".as_bytes());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsers_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        every_parser(&bytes);
    }

    #[test]
    fn parsers_never_panic_on_kernel_like_bytes(bytes in kernelish()) {
        every_parser(&bytes);
    }

    #[test]
    fn single_values_round_trip(n in any::<u64>()) {
        prop_assert_eq!(format::single_u64(format!("{n}\n").as_bytes()), Ok(n));
        prop_assert_eq!(format::single_limit(format!("{n}\n").as_bytes()), Ok(Some(n)));
    }

    #[test]
    fn io_stat_lines_round_trip(major in any::<u64>(), minor in any::<u64>(), r in any::<u64>(), w in any::<u64>(), ri in any::<u64>(), wi in any::<u64>()) {
        let line = format!("{major}:{minor} rbytes={r} wbytes={w} rios={ri} wios={wi} dbytes=0 dios=0");
        let got = format::io_stat_line(line.as_bytes()).unwrap();
        prop_assert_eq!((got.major, got.minor, got.rbytes, got.wbytes, got.rios, got.wios), (major, minor, Some(r), Some(w), Some(ri), Some(wi)));
    }

    #[test]
    fn psi_lines_round_trip(a in 0u64..10_000, b in 0u64..10_000, c in 0u64..10_000, total in any::<u64>()) {
        let line = format!("full avg10={}.{:02} avg60={}.{:02} avg300={}.{:02} total={total}", a / 100, a % 100, b / 100, b % 100, c / 100, c % 100);
        let (_, got) = format::psi_line(line.as_bytes()).unwrap();
        prop_assert!((got.avg10 * 100.0 - a as f64).abs() < 1e-6);
        prop_assert!((got.avg300 * 100.0 - c as f64).abs() < 1e-6);
        prop_assert_eq!(got.total_us, total);
    }
}

const V2_FILES: &[&str] = &[
    "cgroup.procs",
    "cgroup.threads",
    "cpu.stat",
    "cpu.max",
    "cpu.weight",
    "memory.current",
    "memory.max",
    "memory.peak",
    "memory.swap.current",
    "memory.swap.max",
    "memory.stat",
    "memory.events",
    "pids.current",
    "pids.max",
    "io.stat",
    "cpu.pressure",
    "memory.pressure",
    "io.pressure",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every file of a v2 cgroup filled with garbage: the read returns, never panics, and
    /// any field it cannot understand is absent rather than zero.
    #[test]
    fn a_cgroup_of_garbage_files_reads_without_panicking(contents in proptest::collection::vec(kernelish(), V2_FILES.len())) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cgroup.controllers"), "cpu memory pids io\n").unwrap();
        let cg = dir.path().join("junk");
        std::fs::create_dir(&cg).unwrap();
        for (name, body) in V2_FILES.iter().zip(&contents) {
            std::fs::write(cg.join(name), body).unwrap();
        }
        let mut fs = CgroupFs::open(dir.path()).unwrap();
        let read = fs.read(&CgroupPath::from_relative("junk"));
        prop_assert!(read.is_some());
    }
}

#[test]
fn garbled_files_are_none_and_counted_once_per_controller_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cgroup.controllers"), "memory pids\n").unwrap();
    let cg = dir.path().join("bad");
    std::fs::create_dir(&cg).unwrap();
    std::fs::write(cg.join("cgroup.procs"), "1\n").unwrap();
    std::fs::write(cg.join("memory.current"), "lots\n").unwrap();
    std::fs::write(cg.join("memory.max"), "max\n").unwrap();
    std::fs::write(
        cg.join("memory.stat"),
        "anon 4096\nfile\ninactive_file 1024\n",
    )
    .unwrap();
    std::fs::write(cg.join("pids.current"), "7\n").unwrap();
    let mut fs = CgroupFs::open(dir.path()).unwrap();
    let path = CgroupPath::from_relative("bad");
    for _ in 0..3 {
        let stats = fs.read(&path).unwrap().stats;
        let mem = stats.memory.unwrap();
        assert_eq!(
            mem.usage_bytes, None,
            "garbled memory.current must be absent, not 0"
        );
        assert_eq!(mem.working_set_bytes, None);
        assert_eq!(mem.limit_bytes, None, "max is unlimited");
        assert_eq!(mem.rss_bytes, Some(4096), "one bad line spoils only itself");
        assert_eq!(mem.inactive_file_bytes, Some(1024));
        assert_eq!(stats.pids.unwrap().current, Some(7));
    }
    // memory.current and memory.stat are bad on each of the 3 reads.
    assert_eq!(fs.errors().counts().get("memory"), Some(&6));
    assert_eq!(fs.errors().counts().get("pids"), None);
}
