#!/usr/bin/env bash
# Soak: `cgscope serve --interval 1s` (other flags at their defaults) for DURATION seconds over
# CGROUPS real v1 cgroups of our own, while Docker containers are started and removed (CHURN
# of them over the run, at most ALIVE at once), STALLED clients ask for /metrics and never
# read (reconnecting when the server cuts them), and SCRAPERS keep-alive connections loop on
# /metrics and /api/v1/containers. Samples the server's VmRSS and the age of its last sample
# every SAMPLE_EVERY s; prints max and final RSS, the tick's largest lag behind its interval,
# scrape and churn counts, and PASS/FAIL: RSS under daemonset.yaml's memory limit, the tick
# never more than one interval behind. Root only; removes its cgroups, containers and processes.
#
# Usage: tests/load/soak.sh [BINARY=target/release/cgscope]
# Env: DURATION=600 (s), CGROUPS=3000, CHURN=500 per 600 s of DURATION, ALIVE=20,
#      STALLED=60, SPREAD=0.5 (s between two stalled clients' first connections),
#      SCRAPERS=200, SCRAPER_THREADS=2, SAMPLE_EVERY=2 (s), IMAGE=cgscope-test/busybox:latest
#      (made from /bin/busybox, and removed at the end, when absent), SAMPLES= (a file to
#      keep the samples in: "t_s rss_kb age_ms" per line).
# The scrapers are one wrk process: SCRAPER_THREADS threads, each driving SCRAPERS/threads
# connections through epoll, so 200 concurrent clients cost two threads on a 2-core machine.
# They and the stalled clients run under `nice -n 10`: on a node they would be other machines.
set -euo pipefail

bin=${1:-target/release/cgscope}
duration=${DURATION:-600}
count=${CGROUPS:-3000}
churn=${CHURN:-$((500 * duration / 600))}
max_alive=${ALIVE:-20}
stalled=${STALLED:-60}
spread=${SPREAD:-0.5}
scrapers=${SCRAPERS:-200}
scraper_threads=${SCRAPER_THREADS:-2}
sample_every=${SAMPLE_EVERY:-2}
image=${IMAGE:-cgscope-test/busybox:latest}
interval_s=1
controllers=(cpu cpuacct memory pids blkio)
root=/sys/fs/cgroup
here=$(cd "$(dirname "$0")/../.." && pwd)
tag="cgscope-soak-$$-$(date +%s)"

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
[ -x "$bin" ] || { echo "no binary at $bin (cargo build --release)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "docker does not answer" >&2; exit 1; }

limit=$(awk '/^ *limits:/ { l = 1 } l && /^ *memory:/ { print $2; exit }' "$here/daemonset.yaml")
limit_kb=$(awk -v m="$limit" 'BEGIN {
  n = m + 0; u = substr(m, length(n "") + 1)
  f["Ki"] = 1; f["Mi"] = 1024; f["Gi"] = 1048576; f["K"] = 1000 / 1024; f["M"] = 1e6 / 1024; f["G"] = 1e9 / 1024
  if (!(u in f)) exit 1
  printf "%d", n * f[u]
}') || { echo "cannot read the memory limit ($limit) of daemonset.yaml" >&2; exit 1; }

workdir=$(mktemp -d)
serve_pid=
pids=()
made_image=
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
  docker ps -aq --filter "label=cgscope-soak=$tag" | xargs -r docker rm -f >/dev/null
  [ -n "$made_image" ] && docker rmi "$image" >/dev/null
  for c in "${controllers[@]}"; do
    [ -d "$root/$c/$tag" ] || continue
    find "$root/$c/$tag" -mindepth 1 -maxdepth 1 -type d -exec rmdir {} + 2>/dev/null
    rmdir "$root/$c/$tag" 2>/dev/null || echo "could not remove $root/$c/$tag" >&2
  done
  rm -rf "$workdir"
}
trap cleanup EXIT

if ! docker image inspect "$image" >/dev/null 2>&1; then
  mkdir -p "$workdir/rootfs/bin"
  cp /bin/busybox "$workdir/rootfs/bin/"
  ln -s busybox "$workdir/rootfs/bin/sh"
  tar -C "$workdir/rootfs" -c . | docker import - "$image" >/dev/null
  made_image=1
fi

echo "creating $count cgroups under $tag in ${controllers[*]}"
for c in "${controllers[@]}"; do
  mkdir "$root/$c/$tag"
  # shellcheck disable=SC2046 # one word per cgroup name
  [ "$count" -eq 0 ] || (cd "$root/$c/$tag" && mkdir $(seq -f 'g%04g' 0 $((count - 1))))
done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
"$bin" serve --listen "127.0.0.1:$port" --interval "${interval_s}s" >"$workdir/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 100); do
  curl -sf "$base/readyz" >/dev/null 2>&1 && break
  kill -0 "$serve_pid" 2>/dev/null || { cat "$workdir/serve.log" >&2; exit 1; }
  sleep 0.1
done
curl -sf "$base/readyz" >/dev/null || { echo "cgscope not ready after 10 s" >&2; exit 1; }
start_ms=$(date +%s%3N)
end_ms=$((start_ms + duration * 1000))
echo "serve ready on $base; /metrics is $(curl -s "$base/metrics" | wc -c) bytes; soaking for ${duration}s"

# The monitor connects before any load, as a Prometheus that was there first would, and keeps
# its one connection alive (a new one would compete with the clients for the connection cap).
# Every SAMPLE_EVERY s it writes "t_s rss_kb age_ms" to samples, the age being now minus the
# JSON API's time of the last sample. Every 60 s (within the default 2 min of history) it
# writes the time of each sample in the root cgroup's history to ticks, so a late tick
# between two probes is seen too. It exits 1 when the server's process is gone.
python3 - "$port" "$serve_pid" "$start_ms" "$end_ms" "$sample_every" "$workdir" <<'PY' &
import http.client, json, sys, time
port, pid, start_ms, end_ms, every, workdir = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
conn = None
def now_ms():
    return int(time.time() * 1000)
def get(path):
    global conn
    for _ in range(5):
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            if r.status == 200:
                return json.loads(body)
        except (OSError, ValueError, http.client.HTTPException):
            pass
        if conn is not None:
            conn.close()
        conn = None
        time.sleep(0.2)
    return None
def rss_kb():
    try:
        with open("/proc/%s/status" % pid) as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    except (OSError, StopIteration):
        sys.exit(1)
def read_ticks(out):
    view = get("/api/v1/containers/%2F?history=true")
    for point in (view or {}).get("history") or []:
        out.write("%d\n" % point["t_ms"])
with open(workdir + "/samples", "w") as samples, open(workdir + "/ticks", "w") as ticks:
    next_ticks = start_ms + 60000
    while now_ms() < end_ms:
        if now_ms() >= next_ticks:
            read_ticks(ticks)
            next_ticks += 60000
        rss = rss_kb()
        machine = get("/api/v1/machine")
        now = now_ms()
        age = "-" if machine is None else now - machine["sampled_at_unix_ms"]
        samples.write("%d %d %s\n" % ((now - start_ms) // 1000, rss, age))
        samples.flush()
        time.sleep(every)
    read_ticks(ticks)
    rss_kb()
PY
monitor_pid=$!
pids+=("$monitor_pid")

# Churn: one container every DURATION/CHURN s, the oldest removed once ALIVE are running.
(
  trap 'exit 0' TERM
  alive=()
  started=0
  removed=0
  failed=0
  pace_ms=$((duration * 1000 / (churn > 0 ? churn : 1)))
  while [ "$started" -lt "$churn" ]; do
    now=$(date +%s%3N)
    [ "$now" -lt "$end_ms" ] || break
    due=$((start_ms + started * pace_ms))
    [ "$now" -ge "$due" ] || sleep "$(awk -v d=$((due - now)) 'BEGIN { print d / 1000 }')"
    if [ "${#alive[@]}" -ge "$max_alive" ]; then
      docker rm -f "${alive[0]}" >/dev/null 2>>"$workdir/churn.err" && removed=$((removed + 1))
      alive=("${alive[@]:1}")
    fi
    name="$tag-$started"
    if docker run -d --rm --label "cgscope-soak=$tag" --name "$name" "$image" \
      /bin/busybox sleep 100000 >/dev/null 2>>"$workdir/churn.err"; then
      alive+=("$name")
    else
      failed=$((failed + 1))
    fi
    started=$((started + 1))
    echo "$started $removed $failed" >"$workdir/churn.count"
  done
) &
pids+=($!)

# Stalled readers: pipeline GET /metrics and read nothing; a connection the server cut (a
# probe of "\r\n", which HTTP allows before a request, fails) is opened again.
nice -n 10 python3 - "$port" "$stalled" "$spread" "$end_ms" "$workdir/stalled.count" <<'PY' &
import signal, socket, sys, time
port, n, spread, end_ms, out = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
req = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
opened = refused = 0
def report(*_):
    with open(out, "w") as f:
        f.write("%d %d\n" % (opened, refused))
    sys.exit(0)
signal.signal(signal.SIGTERM, report)
def connect():
    global opened, refused
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        refused += 1
        return None
    s.setblocking(False)
    try:
        s.send(req * 4)
    except OSError:
        pass
    opened += 1
    return s
socks = []
for _ in range(n):
    socks.append(connect())
    time.sleep(spread)
while time.time() * 1000 < end_ms:
    time.sleep(2)
    for i, s in enumerate(socks):
        if s is not None:
            try:
                s.send(b"\r\n")
                continue
            except BlockingIOError:
                continue
            except OSError:
                s.close()
        socks[i] = connect()
report()
PY
pids+=($!)

# Fast scrapers: every connection keep-alive, alternating the two paths, no pause.
cat >"$workdir/paths.lua" <<'LUA'
local paths = { "/metrics", "/api/v1/containers" }
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[n % 2 + 1])
end
LUA
nice -n 10 wrk -t "$scraper_threads" -c "$scrapers" -d "${duration}s" --timeout 30s \
  -s "$workdir/paths.lua" "$base" >"$workdir/wrk.txt" 2>&1 &
wrk_pid=$!
pids+=("$wrk_pid")

if ! wait "$monitor_pid"; then
  echo "cgscope serve died:" >&2
  tail "$workdir/serve.log" >&2
  exit 1
fi
final_kb=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$serve_pid/status")
wait "$wrk_pid" || true
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()
kill -0 "$serve_pid" 2>/dev/null || { echo "cgscope serve died:" >&2; tail "$workdir/serve.log" >&2; exit 1; }

read -r started removed churn_failed <"$workdir/churn.count" 2>/dev/null || started=0 removed=0 churn_failed=0
read -r opened refused <"$workdir/stalled.count" 2>/dev/null || opened=? refused=?
requests=$(awk '/requests in/ { print $1 }' "$workdir/wrk.txt")
non2xx=$(awk -F': *' '/Non-2xx/ { print $2 }' "$workdir/wrk.txt")
socket_errors=$(awk '/Socket errors/ { sub(/.*Socket errors: */, ""); print }' "$workdir/wrk.txt")
errors=$(awk '/Socket errors/ { gsub(/[A-Za-z,:]+/, " "); s = 0; for (i = 1; i <= NF; i++) s += $i; print s }' "$workdir/wrk.txt")
echo "cgroups: $count of ours, $(curl -s "$base/metrics" | awk '$1 == "cgscope_cgroups" { print $2 }') reported at the end"
echo "containers churned: $started started ($churn_failed failed to start), $removed removed during the run, at most $max_alive alive"
echo "stalled readers: $stalled at once; $opened connections opened, $refused refused"
echo "scrapers: $scrapers connections on $scraper_threads wrk threads: $((${requests:-0} - ${non2xx:-0} - ${errors:-0})) ok, $((${non2xx:-0} + ${errors:-0})) failed (non-2xx ${non2xx:-0}; socket errors ${socket_errors:-none})"
[ -z "${SAMPLES:-}" ] || cp "$workdir/samples" "$SAMPLES"
# The largest gap between two consecutive samples taken during the run, in ms.
gap_ms=$(sort -nu "$workdir/ticks" | awk -v s="$start_ms" '$1 >= s { if (p && $1 - p > g) g = $1 - p; p = $1; n++ } END { printf "%d %d", g, n }')
awk -v gap="${gap_ms% *}" -v nticks="${gap_ms#* }" -v dur="$duration" -v final="$final_kb" -v limit="$limit_kb" -v lim="$limit" -v iv="$interval_s" '
  { if ($2 > max) max = $2; n++ }
  $3 != "-" { m++; if ($3 > maxage) { maxage = $3; at = $1 } }
  END {
    printf "RSS: max %.1f MiB, final %.1f MiB (limit %s); %d samples\n", max / 1024, final / 1024, lim, n
    maxlag = maxage / 1000 - iv
    printf "tick: last sample at most %.3f s old (t=%d s; lag %.3f s behind the %d s interval; age read in %d of %d probes)\n", maxage / 1000, at, (maxlag > 0 ? maxlag : 0), iv, m, n
    gaplag = gap / 1000 - iv
    printf "tick: at most %.3f s between two samples (lag %.3f s; %d samples in the history read)\n", gap / 1000, (gaplag > 0 ? gaplag : 0), nticks
    if (gaplag > maxlag) maxlag = gaplag
    # A lag measured in under 90% of the probes, or over too few samples, proves nothing.
    measured = m >= 0.9 * n && n > 0 && nticks >= 0.5 * dur / iv
    ok = max < limit && maxlag <= iv && measured
    printf "%s: RSS under the limit: %s; tick never more than one interval behind: %s\n", (ok ? "PASS" : "FAIL"), (max < limit ? "yes" : "no"), (!measured ? "unmeasured" : (maxlag <= iv ? "yes" : "no"))
    exit !ok
  }' "$workdir/samples"
