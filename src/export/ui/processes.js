// processes.js: the detail page's "Processes" card. Per-process CPU is the one figure the
// UI still derives (between two of its own polls): the server keeps no process history.

import { bar, el, fmtBytes, fmtInt, fmtNum, fmtPct, section, table } from "./dom.js";

/** Identity of a process across polls: a recycled pid with another start time is another one. */
const procKey = (p) => `${p.pid}@${p.start_unix_s}`;

/** CPU use of each process between two polls, % of one core, keyed by procKey. */
export function processCpu() {
  let prev = null;
  return (tMs, processes) => {
    const now = new Map(processes.map((p) => [procKey(p), p.user_ns + p.system_ns]));
    const out = new Map();
    if (prev && tMs > prev.t) {
      for (const [k, ns] of now) {
        const before = prev.cpu.get(k);
        if (before != null && ns >= before) out.set(k, ((ns - before) / 1e6 / (tMs - prev.t)) * 100);
      }
    }
    prev = { t: tMs, cpu: now };
    return out;
  };
}

const STATES = {
  R: "running",
  S: "sleeping",
  D: "waiting for I/O (uninterruptible)",
  Z: "zombie (exited, not yet reaped)",
  T: "stopped",
  t: "stopped by a tracer",
  X: "dead",
  I: "idle kernel thread",
  P: "parked",
  W: "waking",
  K: "wakekill",
};

/** The "Processes" card: the cgroup's own processes, busiest first (by CPU % once known). */
export function processCard(list, cpuPct) {
  if (list === undefined) return null;
  if (list === null)
    return section(
      "Processes",
      el("p.muted", {}, "Not available: the cgroup is gone since the latest sample."),
    );
  const cpuNs = (p) => p.user_ns + p.system_ns;
  const rows = [...list.processes].sort(
    (a, b) =>
      (cpuPct.get(procKey(b)) ?? -1) - (cpuPct.get(procKey(a)) ?? -1) || cpuNs(b) - cpuNs(a) || a.pid - b.pid,
  );
  const n = list.total;
  const unread = n - rows.length;
  const summary = list.truncated
    ? `The ${rows.length} busiest of ${fmtInt(n)} processes.`
    : `${fmtInt(n)} process${n === 1 ? "" : "es"}` +
      (unread > 0 ? ` (${unread} not shown: exited while read, or not visible to cgscope).` : ".");
  if (!rows.length)
    return section(
      "Processes",
      el(
        "p.muted",
        { id: "processes-summary" },
        n ? summary : "No processes in this cgroup itself (child cgroups list their own).",
      ),
    );
  const wrap = table(
    [
      { label: "PID", num: true, title: "Process id in cgscope's view of /proc (the host's, usually)" },
      "Command",
      { label: "CPU", num: true, title: "% of one core since the previous refresh" },
      { label: "RSS", num: true, title: "Resident memory (VmRSS)" },
      { label: "Threads", num: true, cls: "c-opt" },
      { label: "State", cls: "c-opt" },
    ],
    rows.map((p) => {
      const pct = cpuPct.get(procKey(p));
      return el(
        "tr",
        { dataset: { pid: p.pid } },
        el("td.num", {}, p.pid),
        el("td.cmd", { title: p.command }, el("span.cmd-text", {}, p.command)),
        el(
          "td.num",
          { title: `CPU time ${fmtNum(cpuNs(p) / 1e9)} s (user ${fmtNum(p.user_ns / 1e9)} s)` },
          fmtPct(pct),
          pct != null ? bar(pct / 100, "of one core") : null,
        ),
        el("td.num", {}, fmtBytes(p.rss_bytes)),
        el("td.num.c-opt", {}, p.threads),
        el(
          `td.c-opt.state.st-${/^[A-Za-z]$/.test(p.state) ? p.state : "other"}`,
          { title: STATES[p.state] || "" },
          p.state,
        ),
      );
    }),
    "procs",
  );
  wrap.querySelector("table").id = "processes";
  return section("Processes", el("p.count-line", { id: "processes-summary" }, summary), wrap);
}

// PSI is not in the server's history: the avg10 values of successive polls, per container,
