#!/usr/bin/env bash
# Load check against the issue's budget (RSS <= 30 MB, CPU <= 3% of one core): 1,000 real v1
# cgroups of our own, `cgscope serve --interval 1s --history 2m`, CPU % of one core from
# t=10 s to t=70 s and RSS. Root only; removes its cgroups and processes on exit.
#
# Usage: tests/load/serve-1000-cgroups.sh [BINARY=target/release/cgscope] [BINARY_B]
#   With two binaries each run measures both, one after the other over the same cgroups (A/B
#   interleaved, so a noisy shared machine weighs on both alike), and the medians of each and
#   their ratio are printed.
# Env: CGROUPS=1000, WITH_PROCS=50 (how many of them hold a sleeping process),
#      SCRAPE_EVERY=15 (s, one GET /metrics as Prometheus's default would; 0: none),
#      INTERVAL=1s, HISTORY=2m (cgscope's flags), STEADY_AT=130 (s; RSS again once the 2m
#      history is full, which it is not at t=70 s; 0: skip),
#      WAKE=0 (1: each of those processes wakes every 0.5 s instead of sleeping throughout, so
#      every one of their cgroups uses some CPU between two samples and is read in full),
#      RUNS=3 (fresh `serve` processes over the same cgroups, one after the other; each run's
#      figures are printed, then their medians).
set -euo pipefail

bins=("${@:-target/release/cgscope}")
count=${CGROUPS:-1000}
with_procs=${WITH_PROCS:-50}
scrape_every=${SCRAPE_EVERY:-15}
interval=${INTERVAL:-1s}
history=${HISTORY:-2m}
steady_at=${STEADY_AT:-130}
wake=${WAKE:-0}
runs=${RUNS:-3}
controllers=(cpu cpuacct memory pids blkio)
root=/sys/fs/cgroup
prefix="cgscope-load-$$-$(date +%s)"

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for bin in "${bins[@]}"; do
  [ -x "$bin" ] || { echo "no binary at $bin (cargo build --release)" >&2; exit 1; }
done

sleepers=()
serve_pid=
workdir=$(mktemp -d)
cleanup() {
  set +e
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
  for p in "${sleepers[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${sleepers[@]}"; do wait "$p" 2>/dev/null; done
  for c in "${controllers[@]}"; do
    [ -d "$root/$c/$prefix" ] || continue
    find "$root/$c/$prefix" -mindepth 1 -maxdepth 1 -type d -exec rmdir {} + 2>/dev/null
    rmdir "$root/$c/$prefix" 2>/dev/null || echo "could not remove $root/$c/$prefix" >&2
  done
  rm -rf "$workdir"
}
trap cleanup EXIT

echo "creating $count cgroups under $prefix in ${controllers[*]}"
for c in "${controllers[@]}"; do
  mkdir "$root/$c/$prefix"
  # shellcheck disable=SC2046 # one word per cgroup name
  [ "$count" -eq 0 ] || (cd "$root/$c/$prefix" && mkdir $(seq -f 'g%04g' 0 $((count - 1))))
done
for i in $(seq 0 $((with_procs - 1))); do
  if [ "$wake" = 1 ]; then
    # `read -t` on a pipe we also hold open for writing times out every 0.5 s: a wakeup
    # without a fork, so the load itself stays small.
    bash -c 'exec 3<> <(:); while :; do read -r -t 0.5 -u 3 || :; done' &
  else
    sleep 100000 &
  fi
  pid=$!
  sleepers+=("$pid")
  g=$(printf 'g%04d' "$i")
  for c in "${controllers[@]}"; do echo "$pid" >"$root/$c/$prefix/$g/cgroup.procs"; done
done
echo "$with_procs of them hold a process ($([ "$wake" = 1 ] && echo 'waking every 0.5 s' || echo sleeping))"

measure_once() { # one fresh serve of binary $1: appends its CPU %, RSS kB and steady RSS kB to the lists of binary number $2
  local bin=$1 which=$2
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$bin" serve --listen "127.0.0.1:$port" --interval "$interval" --history "$history" >"$workdir/serve.log" 2>&1 &
  serve_pid=$!
  start=$(date +%s.%N)

  clk_tck=$(getconf CLK_TCK)
  cpu_ticks() { # "utime stime" of $1: fields 14 and 15 of /proc/PID/stat (12, 13 after "comm")
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    awk '{ print $12, $13 }' <<<"$stat"
  }
  vm_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
  at() { # sleeps until $1 seconds after start, scraping /metrics every $scrape_every s meanwhile
    local target=$1 now
    while :; do
      now=$(date +%s.%N)
      awk -v n="$now" -v s="$start" -v t="$target" 'BEGIN { exit !(n - s < t) }' || return 0
      if [ "$scrape_every" != 0 ] && [ -n "${next_scrape:-}" ] &&
        awk -v n="$now" -v x="$next_scrape" 'BEGIN { exit !(n >= x) }'; then
        curl -s -o "$workdir/metrics.txt" "http://127.0.0.1:$port/metrics" || true
        next_scrape=$(awk -v x="$next_scrape" -v e="$scrape_every" 'BEGIN { printf "%.3f", x + e }')
      fi
      sleep 0.2
    done
  }

  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    kill -0 "$serve_pid" 2>/dev/null || { cat "$workdir/serve.log" >&2; exit 1; }
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { echo "cgscope not ready after 10 s" >&2; exit 1; }
  next_scrape=$(date +%s.%N)

  at 10
  t0=$(date +%s.%N)
  c0=$(cpu_ticks "$serve_pid")
  at 70
  t1=$(date +%s.%N)
  c1=$(cpu_ticks "$serve_pid")
  rss_kb=$(vm_kb "$serve_pid" VmRSS)
  hwm_kb=$(vm_kb "$serve_pid" VmHWM)
  kill -0 "$serve_pid" 2>/dev/null || { cat "$workdir/serve.log" >&2; exit 1; }
  steady_kb=
  if [ "$steady_at" -gt 70 ]; then
    at "$steady_at"
    steady_kb=$(vm_kb "$serve_pid" VmRSS)
  fi

  curl -s -o "$workdir/metrics.txt" "http://127.0.0.1:$port/metrics"
  sweep=$(awk '$1 == "cgscope_sweep_duration_seconds" { printf "%.1f ms", $2 * 1000 }' "$workdir/metrics.txt")
  reported=$(grep -c '^container_last_seen{' "$workdir/metrics.txt" || true)
  mine=$(grep '^container_last_seen{' "$workdir/metrics.txt" | grep -c "id=\"/$prefix/" || true)
  echo "cgscope reports $reported cgroups ($mine of them ours); /metrics is $(wc -c <"$workdir/metrics.txt") bytes, $(wc -l <"$workdir/metrics.txt") lines"
  echo "scraped every ${scrape_every}s (0: never), --interval $interval --history $history; last sweep took ${sweep:-?}"
  read -r u0 s0 <<<"$c0"
  read -r u1 s1 <<<"$c1"
  awk -v u0="$u0" -v s0="$s0" -v u1="$u1" -v s1="$s1" -v t0="$t0" -v t1="$t1" -v hz="$clk_tck" -v rss="$rss_kb" -v hwm="$hwm_kb" 'BEGIN {
    c = (u1 - u0) + (s1 - s0)
    printf "CPU: %.2f%% of one core over %.1f s (t=10..70 s; %d clock ticks at %d/s: user %d, system %d)\n", 100 * c / hz / (t1 - t0), t1 - t0, c, hz, u1 - u0, s1 - s0
    printf "RSS: %.1f MB = %.1f MiB (VmRSS at t=70 s; peak VmHWM so far %.1f MB)\n", rss * 1024 / 1e6, rss / 1024, hwm * 1024 / 1e6
  }'
  [ -z "$steady_kb" ] || awk -v k="$steady_kb" -v t="$steady_at" 'BEGIN { printf "RSS: %.1f MB = %.1f MiB (VmRSS at t=%d s)\n", k * 1024 / 1e6, k / 1024, t }'
  kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
  serve_pid=
  cpu_pcts[which]+=" $(awk -v u0="$u0" -v s0="$s0" -v u1="$u1" -v s1="$s1" -v t0="$t0" -v t1="$t1" -v hz="$clk_tck" 'BEGIN { printf "%.2f", 100 * ((u1 - u0) + (s1 - s0)) / hz / (t1 - t0) }')"
  rss_kbs[which]+=" $rss_kb"
  steady_kbs[which]+=" ${steady_kb:-0}"
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

cpu_pcts=()
rss_kbs=()
steady_kbs=()
for run in $(seq 1 "$runs"); do
  for which in "${!bins[@]}"; do
    echo "--- run $run of $runs: ${bins[$which]}"
    measure_once "${bins[$which]}" "$which"
  done
done
medians=()
for which in "${!bins[@]}"; do
  # shellcheck disable=SC2086 # one word per run
  cpu=$(median ${cpu_pcts[$which]})
  medians+=("$cpu")
  echo "=== ${bins[$which]}"
  echo "--- median of $runs runs: CPU $cpu% of one core (runs:${cpu_pcts[$which]})"
  # shellcheck disable=SC2086
  awk -v k="$(median ${rss_kbs[$which]})" 'BEGIN { printf "--- median RSS at t=70 s: %.1f MB = %.1f MiB\n", k * 1024 / 1e6, k / 1024 }'
  # shellcheck disable=SC2086
  [ "$steady_at" -le 70 ] || awk -v k="$(median ${steady_kbs[$which]})" -v t="$steady_at" 'BEGIN { printf "--- median RSS at t=%d s: %.1f MB = %.1f MiB\n", t, k * 1024 / 1e6, k / 1024 }'
  if [ "$with_procs" -gt 0 ]; then
    # Per sample: the interval in seconds is the number of samples per second.
    awk -v c="$cpu" -v n="$with_procs" -v iv="$interval" 'BEGIN {
      s = iv; if (s ~ /ms$/) { sub(/ms$/, "", s); s /= 1000 } else { sub(/s$/, "", s) }
      printf "--- per sample: %.0f us of CPU for the whole sweep, %.1f us per cgroup that holds a process (%d of them)\n", c / 100 * s * 1e6, c / 100 * s * 1e6 / n, n
    }'
  fi
done
if [ "${#bins[@]}" -eq 2 ]; then
  awk -v a="${medians[0]}" -v b="${medians[1]}" 'BEGIN { if (a > 0) printf "=== CPU of the second binary over the first: %.2fx (medians %s%% and %s%%)\n", b / a, a, b }'
fi
