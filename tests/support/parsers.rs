//! The one list of cgscope's parsers of kernel and /proc files, fed the same bytes: the
//! property tests (`tests/parsers.rs`) and the fuzz target (`fuzz/`) both call it, so a parser
//! added here is fuzzed and property-tested alike. None may panic.

use cgscope::cgroupfs::format;
use cgscope::proc::processes;

/// Feeds `bytes` to every parser, whole and line by line.
pub fn every_parser(bytes: &[u8]) {
    let _ = format::single_u64(bytes);
    let _ = format::single_limit(bytes);
    let _ = format::v1_memory_limit(bytes);
    let _ = format::signed_limit(bytes);
    let _ = format::cpu_max(bytes);
    let _ = format::u64_list(bytes);
    let _ = format::count_lines(bytes);
    let _ = format::flat_keyed(bytes).count();
    for line in format::lines(bytes) {
        let _ = format::device_number(line);
        let _ = format::io_stat_line(line);
        let _ = format::blkio_line(line);
        let _ = format::psi_line(line);
    }
    let _ = cgscope::cgroupfs::parse_procs(bytes, 8);
    let _ = cgscope::proc::parse_partitions(bytes);
    // The per-process files of `?processes=true`.
    let _ = processes::parse_stat(bytes);
    let _ = processes::parse_status_rss_bytes(bytes);
    let _ = processes::parse_cmdline(bytes, 64);
    let _ = processes::parse_btime(bytes);
    let _ = cgscope::proc::parse_meminfo(bytes);
    let _ = cgscope::proc::parse_namespace_link(bytes);
    let _ = cgscope::proc::parse_cpuinfo_topology(bytes);
}
