#!/usr/bin/env bash
# Resident memory of `serve` on a small node: 10 Docker containers (the test image
# `cgscope-test/busybox`, made by .ci/setup, each running `sleep`), `serve --interval 1s`, a
# scrape at 20 s and at 60 s, then VmRSS, RssAnon and RssFile at 60 s. Root only (Docker).
#
# Usage: tests/load/small-node-rss.sh BINARY [BINARY_B ...]
#   Each run measures every binary in turn (interleaved); RUNS=3 runs, then the median VmRSS
#   of each. A binary may be a script that sets the environment and `exec`s cgscope, e.g.
#   GLIBC_TUNABLES as the manifests set it. The containers are removed at the end.
set -euo pipefail

runs=${RUNS:-3}
image=cgscope-test/busybox:latest
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
[ $# -gt 0 ] || { echo "usage: $0 BINARY [BINARY_B ...]" >&2; exit 2; }
prefix="cgscope-small-$$"
serve_pid=
cleanup() {
  set +e
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
  # shellcheck disable=SC2046 # one word per container id
  docker rm -f $(docker ps -aq --filter "name=$prefix") >/dev/null 2>&1
}
trap cleanup EXIT

for i in $(seq 0 9); do
  docker run -d --name "$prefix-$i" "$image" /bin/busybox sleep 100000 >/dev/null
done
declare -A rss
for run in $(seq 1 "$runs"); do
  for bin in "$@"; do
    port=$((20000 + RANDOM % 10000))
    "$bin" serve --listen "127.0.0.1:$port" --interval 1s >/dev/null 2>&1 &
    serve_pid=$!
    sleep 20
    curl -sf -o /dev/null "http://127.0.0.1:$port/metrics"
    sleep 40
    curl -sf -o /dev/null "http://127.0.0.1:$port/metrics"
    line=$(awk '/^VmRSS|^RssAnon|^RssFile/ { v[$1] = $2 } END { printf "%d %d %d", v["VmRSS:"], v["RssAnon:"], v["RssFile:"] }' "/proc/$serve_pid/status")
    read -r vm anon file <<<"$line"
    echo "run $run: $bin: VmRSS $vm KiB (anon $anon, file $file) at 60 s"
    rss[$bin]="${rss[$bin]:-} $vm"
    kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true
    serve_pid=
  done
done
for bin in "$@"; do
  # shellcheck disable=SC2086 # one word per run
  median=$(printf '%s\n' ${rss[$bin]} | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
  awk -v b="$bin" -v k="$median" -v r="${rss[$bin]}" 'BEGIN { printf "=== %s: median VmRSS %.2f MB = %.2f MiB (runs, KiB:%s)\n", b, k * 1024 / 1e6, k / 1024, r }'
done
