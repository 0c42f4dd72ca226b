#!/usr/bin/env bash
# Memory under clients that never read: `cgscope serve` over a generated tree of CGROUPS copies
# of the v1 fixture's Docker container (no root needed, nothing outside a temp dir), then
# STALLED clients each pipeline enough `GET /metrics` to fill their sockets and read nothing.
# Prints the body size and the server's VmRSS before, and its peak while they stall.
#
# Usage: tests/load/stalled-readers.sh [BINARY=target/release/cgscope] [extra serve flags...]
# Env: CGROUPS=3000, STALLED=60, SPREAD=1 (s between two clients, so that they stall on
#      different ticks' bodies), WATCH=90 (s of RSS samples from the first client on).
# The limits of issue 13 off, as before it: `... --write-timeout 1h --max-connections 100000`.
set -euo pipefail

bin=${1:-target/release/cgscope}
shift || true
count=${CGROUPS:-3000}
stalled=${STALLED:-60}
watch_s=${WATCH:-90}
spread=${SPREAD:-1}
here=$(cd "$(dirname "$0")/../.." && pwd)
[ -x "$bin" ] || { echo "no binary at $bin" >&2; exit 1; }

workdir=$(mktemp -d)
serve_pid=
clients_pid=
cleanup() {
  set +e
  [ -n "$clients_pid" ] && kill "$clients_pid" 2>/dev/null && wait "$clients_pid" 2>/dev/null
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
  rm -rf "$workdir"
}
trap cleanup EXIT

cp -a "$here/tests/fixtures/v1-docker-host/." "$workdir/"
python3 - "$workdir/cgroup" "$count" <<'PY'
import os, shutil, sys
root, count = sys.argv[1], int(sys.argv[2])
for ctl in os.listdir(root):
    docker = os.path.join(root, ctl, "docker")
    if not os.path.isdir(docker):
        continue
    src = os.path.join(docker, sorted(os.listdir(docker))[0])
    for i in range(count):
        shutil.copytree(src, os.path.join(docker, "%064x" % (i + 1)))
PY

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" serve --cgroup-root "$workdir/cgroup" --proc-root "$workdir/proc" \
  --machine-id-file "$workdir/machine-id" --listen "127.0.0.1:$port" \
  --docker-socket '' --containerd-socket '' "$@" 2>"$workdir/serve.log" &
serve_pid=$!
for _ in $(seq 1 300); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
rss() { awk '/VmRSS/ {print $2}' "/proc/$serve_pid/status"; }
sleep 5
bytes=$(curl -fs "http://127.0.0.1:$port/metrics" | wc -c)
echo "cgroups: $count; /metrics body: $bytes bytes; RSS before: $(rss) kB"

python3 - "$port" "$stalled" "$bytes" "$spread" <<'PY' &
import socket, sys, time
port, n, body, spread = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
reqs = max(4, (64 << 20) // max(body, 1))
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(2)
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * reqs)
    except OSError:
        pass
    socks.append(s)
    time.sleep(spread)
time.sleep(3600)
PY
clients_pid=$!
peak=0
for _ in $(seq 1 $((watch_s / 2))); do
  sleep 2
  r=$(rss); [ "$r" -gt "$peak" ] && peak=$r
done
echo "stalled clients: $stalled, one every $spread s; peak RSS over ${watch_s} s: $peak kB; RSS at the end: $(rss) kB"
echo "served connections still open: $(ss -Htn state established "( sport = :$port )" | wc -l)"
