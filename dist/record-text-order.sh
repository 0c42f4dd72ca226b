#!/usr/bin/env bash
# Records the functions `serve` runs on a node and writes them, hottest first, to
# dist/text-order.txt, which the static link places at the start of `.text` (build.rs). What
# `serve` never runs (`top`, `capture`, TLS, the UI) then stays together after it, unmapped.
#
# Usage: dist/record-text-order.sh    (root, Docker with the test image from .ci/setup, valgrind)
# Run it again after a toolchain or dependency update: symbol names carry a hash of both, and a
# name no longer found is skipped at link time, so a stale list costs memory, never correctness.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root (reads the host's cgroups and Docker)" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }

target=x86_64-unknown-linux-gnu
target_dir=${CARGO_TARGET_DIR:-target}
# Exactly the shipped build (Dockerfile): the names must be the ones its link sees.
RUSTFLAGS='-C target-feature=+crt-static' \
  cargo build --profile dist --target "$target" --bin cgscope
bin="$target_dir/$target/dist/cgscope"
work=$(mktemp -d)
prefix="cgscope-order-$$"
cleanup() {
  set +e
  # shellcheck disable=SC2046 # one word per container id
  docker rm -f $(docker ps -aq --filter "name=$prefix") >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

# One recorded `serve`, scraped as a node's consumers scrape it (Prometheus with gzip, the
# kubelet-style endpoints metrics-server and the summary API read, the probes), 60 s at 1 s.
record() {
  local name=$1; shift
  local port=$((20000 + RANDOM % 10000))
  valgrind --tool=callgrind --demangle=no --dump-instr=no \
    --callgrind-out-file="$work/$name.callgrind" \
    "$bin" serve --listen "127.0.0.1:$port" --interval 1s "$@" >"$work/$name.log" 2>&1 &
  local pid=$!
  sleep 15
  for _ in $(seq 1 9); do
    curl -sf -o /dev/null -H 'Accept-Encoding: gzip' "http://127.0.0.1:$port/metrics"
    for path in /metrics /metrics/cadvisor /metrics/resource /stats/summary /healthz /readyz; do
      curl -sf -o /dev/null "http://127.0.0.1:$port$path"
    done
    sleep 5
  done
  kill -INT "$pid"
  wait "$pid" || { cat "$work/$name.log" >&2; return 1; }
}

# A small Docker node on this host's cgroups (v1 or hybrid here), then the recorded v2 tree,
# so both readers' code is in the list.
for i in $(seq 0 9); do
  docker run -d --name "$prefix-$i" cgscope-test/busybox:latest /bin/busybox sleep 100000 >/dev/null
done
record host
record v2 --cgroup-root tests/fixtures/v2-qemu-6.1/cgroup --proc-root tests/fixtures/v2-qemu-6.1/proc

# Self cost per function over both runs. A cost line after `calls=` is the callee's inclusive
# cost, not the caller's own, so it is skipped.
awk '
  /^c?fn=\(/ {
    id = $1; sub(/^c?fn=/, "", id)
    if (NF > 1) name[FILENAME, id] = $2
    if ($1 ~ /^fn=/) cur = FILENAME SUBSEP id
    next
  }
  /^calls=/ { skip = 1; next }
  /^[0-9+*-]/ { if (skip) { skip = 0; next } if (cur != "") cost[cur] += $2; next }
  END { for (k in cost) { split(k, p, SUBSEP); n = name[p[1], p[2]]; if (n != "") total[n] += cost[k] }
        for (n in total) print total[n], n }
' "$work"/*.callgrind | sort -k1,1nr -k2 | awk '{ print $2 }' >"$work/ran.txt"
# Keep only functions the binary defines (valgrind also names its own stubs).
nm --defined-only "$bin" | awk '$2 ~ /^[tTwW]$/ { print $3 }' | sort -u >"$work/defined.txt"
awk 'NR == FNR { defined[$1] = 1; next } defined[$1]' "$work/defined.txt" "$work/ran.txt" \
  >dist/text-order.txt
echo "dist/text-order.txt: $(wc -l <dist/text-order.txt) functions ($(wc -l <"$work/ran.txt") ran)"
