#!/usr/bin/env bash
# CPU cost of `cgscope serve --interval 1s --history 2m` over many busy cgroups on a real cgroup v2
# kernel: boots Debian's 6.1 cloud kernel (cgroup v2 only) in qemu/TCG, as tests/vm/run-v2.sh
# does, with tests/vm/load-init as PID 1. The guest makes CGROUPS cgroups, each holding one
# process that wakes every 0.5 s (so every cgroup is read in full at each sample), and then, for
# each of RUNS rounds, runs OLD and then NEW (A/B interleaved): CPU % of one core from SETTLE s
# after /readyz answers over WINDOW s, VmRSS at the end, one GET /metrics. Prints each run, the
# medians, the per-cgroup CPU per sample and NEW/OLD, in the style of serve-1000-cgroups.sh.
# The figures are guest CPU time under TCG (software emulation): many times slower than
# native, so only the ratio carries over to a real host, not the absolute numbers. The guest
# can also charge to the running task time the host took its vCPU thread away, so a busy host
# inflates a run: hence A/B interleaving and medians (and one guest at a time).
#
# Usage (root): tests/load/serve-v2-guest.sh OLD_BINARY NEW_BINARY [OUT_DIR]
#   Both binaries must be statically linked (the initramfs has no libc). Build one per checkout:
#     RUSTFLAGS='-C target-feature=+crt-static' CARGO_TARGET_DIR=target/vm-build \
#       cargo build --release --target x86_64-unknown-linux-gnu --bin cgscope
#   giving target/vm-build/x86_64-unknown-linux-gnu/release/cgscope (an older revision: build
#   it the same way in a `git worktree add /tmp/old REV`).
#   OUT_DIR (default: a new temp dir) receives the guest's tar: results.txt, each run's
#   /metrics and stderr, and console.log.
# Env: CGROUPS=200 (a TCG guest makes and serves these in reasonable time; the whole script
#      takes about 8 minutes with the defaults), RUNS=3, SETTLE=10 (s), WINDOW=60 (s),
#      QEMU_TIMEOUT (s; default from the above), MEM=1024 (guest MiB).
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 OLD_BINARY NEW_BINARY [OUT_DIR]" >&2
    exit 2
fi
[ "$(id -u)" = 0 ] || { echo "run as root (apt-get, mknod in the initramfs)" >&2; exit 2; }
old_bin=$(realpath "$1")
new_bin=$(realpath "$2")
for bin in "$old_bin" "$new_bin"; do
    [ -x "$bin" ] || { echo "no binary at $bin" >&2; exit 2; }
    # A dynamic binary would fail in the guest with a bare "not found".
    if file -L "$bin" 2>/dev/null | grep -q 'dynamically linked' &&
        ! file -L "$bin" | grep -q 'static-pie'; then
        echo "$bin is dynamically linked; build it with +crt-static (see the header)" >&2
        exit 2
    fi
done

count=${CGROUPS:-200}
runs=${RUNS:-3}
settle=${SETTLE:-10}
window=${WINDOW:-60}
mem=${MEM:-1024}
# Boot and setup, then per serve: up to 60 s to /readyz, SETTLE, WINDOW, the scrape.
qemu_timeout=${QEMU_TIMEOUT:-$((180 + count / 2 + runs * 2 * (90 + settle + window)))}

here=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$here/../.." && pwd)
VM_DIR=$REPO/tests/vm
CACHE=$REPO/target/vm-cache
mkdir -p "$CACHE"
if [ $# -eq 3 ]; then
    out_dir=$(realpath -m "$3")
    rm -rf "$out_dir"
    mkdir -p "$out_dir"
else
    out_dir=$(mktemp -d /tmp/serve-v2-guest.XXXXXX)
fi

# The same cache and lock as tests/vm/run-v2.sh: one guest at a time per checkout (two TCG
# guests on two cores would starve each other and skew the figures).
exec 9>"$CACHE/lock"
flock 9

step() { echo "== serve-v2-guest: $* ($(date +%T))"; }

# --- host packages and kernel, as tests/vm/run-v2.sh gets them, sharing its cache ------------
# shellcheck source=tests/vm/guest-kernel.sh
. "$REPO/tests/vm/guest-kernel.sh"

# --- initramfs and out disk -------------------------------------------------------------------
RUN=$(mktemp -d "$CACHE/load.XXXXXX")
trap 'rm -rf "$RUN"' EXIT
ROOT=$RUN/root
mkdir -p "$ROOT"/{bin,dev,proc,sys,tmp,lib/modules}
cp /bin/busybox "$ROOT/bin/"
cp "$old_bin" "$ROOT/bin/cgscope-old"
cp "$new_bin" "$ROOT/bin/cgscope-new"
cp "$KDIR"/modules/*.ko "$ROOT/lib/modules/"
install -m 755 "$VM_DIR/load-init" "$ROOT/init"
mknod -m 600 "$ROOT/dev/console" c 5 1
(cd "$ROOT" && find . | cpio -o -H newc --quiet) >"$RUN/initramfs.cpio"
truncate -s 64M "$RUN/out.img"

# --- boot ---------------------------------------------------------------------------------------
echo "old: $old_bin ($(sha256sum "$old_bin" | cut -c1-12))"
echo "new: $new_bin ($(sha256sum "$new_bin" | cut -c1-12))"
step "booting $(basename "$KERNEL") $KVER under TCG: $count cgroups, $runs runs, window ${settle}..$((settle + window)) s (timeout ${qemu_timeout}s)"
start=$(date +%s%N)
qemu_rc=0
# TCG on purpose: /dev/kvm on these hosts is kvm-pvm, which cannot run a stock kernel.
timeout --kill-after=10 "$qemu_timeout" qemu-system-x86_64 \
    -accel tcg -cpu max -m "$mem" -smp 2 \
    -display none -monitor none -serial "file:$RUN/console.log" \
    -no-reboot -nic none \
    -kernel "$KERNEL" -initrd "$RUN/initramfs.cpio" \
    -append "console=ttyS0 panic=-1 loglevel=4 cgroup_no_v1=all CGROUPS=$count RUNS=$runs SETTLE=$settle WINDOW=$window" \
    -drive "file=$RUN/out.img,format=raw,if=none,id=out" \
    -device virtio-blk-pci,drive=out,serial=outdisk \
    </dev/null || qemu_rc=$?
end=$(date +%s%N)
tr -d '\r' <"$RUN/console.log" >"$out_dir/console.log"
echo "serve-v2-guest: qemu exit $qemu_rc, wall $(((end - start) / 1000000000)) s; guest files in $out_dir"
grep -a 'CGV2LOAD:' "$out_dir/console.log" | grep -v ': run \|: ready after\|: result ' || true
fail() {
    echo "serve-v2-guest: FAIL: $*" >&2
    tail -n 40 "$out_dir/console.log" >&2
    exit 1
}
[ "$qemu_rc" = 0 ] || fail "qemu exited with $qemu_rc (124 = timeout)"
tar xf "$RUN/out.img" -C "$out_dir" || fail "the out disk holds no tar"
[ -s "$out_dir/results.txt" ] || fail "the guest wrote no results"
! grep -q FAILED "$out_dir/results.txt" || fail "$(grep FAILED "$out_dir/results.txt")"

# --- figures ------------------------------------------------------------------------------------
read -r _ procs <"$out_dir/cgroups"
label() { if [ "$1" = old ]; then echo "$old_bin"; else echo "$new_bin"; fi; }
cpu_pct() { # CPU % of one core of one results.txt line
    awk '{ printf "%.2f", 100 * (($5 - $3) + ($6 - $4)) / $14 / ($8 - $7) }' <<<"$1"
}
declare -A cpus rsss
for run in $(seq 1 "$runs"); do
    for which in old new; do
        line=$(awk -v r="$run" -v w="$which" '$1 == r && $2 == w' "$out_dir/results.txt")
        [ -n "$line" ] || fail "no result for run $run $which"
        echo "--- run $run of $runs: $(label "$which")"
        m=$out_dir/metrics-$run-$which.txt
        [ "$(awk '{ print $13 }' <<<"$line")" = 0 ] || fail "GET /metrics failed in run $run ($which)"
        reported=$(grep -c '^container_last_seen{' "$m" || true)
        mine=$(grep '^container_last_seen{' "$m" | grep -c 'id="/load/g' || true)
        sweep=$(awk '$1 == "cgscope_sweep_duration_seconds" { printf "%.1f ms", $2 * 1000 }' "$m")
        echo "cgscope reports $reported cgroups ($mine of them ours); /metrics is $(wc -c <"$m") bytes, $(wc -l <"$m") lines"
        echo "scraped once at the end, --interval 1s --history 2m; last sweep took ${sweep:-?} (guest time)"
        awk -v s="$settle" -v n="$procs" '{
            c = ($5 - $3) + ($6 - $4); t = $8 - $7
            printf "CPU: %.2f%% of one core over %.1f s (t=%d..%d s; %d clock ticks at %d/s: user %d, system %d; TCG guest CPU time)\n", 100 * c / $14 / t, t, s, s + t, c, $14, $5 - $3, $6 - $4
            printf "RSS: %.1f MB = %.1f MiB (VmRSS at the end; peak VmHWM %.1f MB)\n", $9 * 1024 / 1e6, $9 / 1024, $10 * 1024 / 1e6
            printf "load: the processes in the %d busy cgroups used %.2f%% of one core meanwhile\n", n, ($12 - $11) / 1e4 / t
        }' <<<"$line"
        cpus[$which]+=" $(cpu_pct "$line")"
        rsss[$which]+=" $(awk '{ print $9 }' <<<"$line")"
    done
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
medians=()
for which in old new; do
    # shellcheck disable=SC2086 # one word per run
    cpu=$(median ${cpus[$which]})
    medians+=("$cpu")
    echo "=== $(label "$which")"
    echo "--- median of $runs runs: CPU $cpu% of one core, TCG guest (runs:${cpus[$which]})"
    # shellcheck disable=SC2086
    awk -v k="$(median ${rsss[$which]})" -v t=$((settle + window)) 'BEGIN { printf "--- median RSS at t=%d s: %.1f MB = %.1f MiB\n", t, k * 1024 / 1e6, k / 1024 }'
    awk -v c="$cpu" -v n="$procs" 'BEGIN {
        printf "--- per sample: %.0f us of CPU for the whole sweep, %.1f us per cgroup that holds a process (%d of them; TCG guest time)\n", c / 100 * 1e6, c / 100 * 1e6 / n, n
    }'
done
awk -v a="${medians[0]}" -v b="${medians[1]}" 'BEGIN { if (a > 0) printf "=== CPU of the second binary over the first: %.2fx (medians %s%% and %s%%, cgroup v2 guest under qemu TCG)\n", b / a, a, b }'
