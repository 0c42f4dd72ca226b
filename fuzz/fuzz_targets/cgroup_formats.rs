//! Fuzzes every kernel-format parser with the same input: none may panic.
#![no_main]

use cgscope::cgroupfs::format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = format::single_u64(data);
    let _ = format::single_limit(data);
    let _ = format::v1_memory_limit(data);
    let _ = format::signed_limit(data);
    let _ = format::cpu_max(data);
    let _ = format::u64_list(data);
    let _ = format::count_lines(data);
    let _ = format::flat_keyed(data).count();
    for line in format::lines(data) {
        let _ = format::device_number(line);
        let _ = format::io_stat_line(line);
        let _ = format::blkio_line(line);
        let _ = format::psi_line(line);
    }
    let _ = cgscope::proc::parse_partitions(data);
    let _ = cgscope::proc::parse_meminfo(data);
    let _ = cgscope::proc::parse_namespace_link(data);
    let _ = cgscope::proc::parse_cpuinfo_topology(data);
    let _ = cgscope::cgroupfs::parse_procs(data, 8);
    let _ = cgscope::proc::processes::parse_stat(data);
    let _ = cgscope::proc::processes::parse_status_rss_bytes(data);
    let _ = cgscope::proc::processes::parse_cmdline(data, 64);
    let _ = cgscope::proc::processes::parse_btime(data);
});
