// detail.js: one container, pod or cgroup: tiles, charts of its history, its identity, limits
// and stats, rates per device and per interface, its processes. Every rate and average comes
// from the API (`?history=true`); this page only draws them.

import { lineChart } from "./chart.js";
import {
  cpuLimit,
  defs,
  displayName,
  el,
  enc,
  fmtAgo,
  fmtBytes,
  fmtCores,
  fmtInt,
  fmtMicros,
  fmtNum,
  fmtPct,
  fmtRate,
  keyOf,
  linkTo,
  section,
  shortId,
  table,
  tile,
} from "./dom.js";
import { api, learnInterval, machine } from "./live.js";
import { processCard, processCpu } from "./processes.js";

/** The PSI lines as the API's `pressure_avg10` names them, in chart order. */
const PSI = [
  ["cpu_some_pct", "cpu some", "s1", false],
  ["memory_some_pct", "mem some", "s2", false],
  ["io_some_pct", "io some", "s3", false],
  ["cpu_full_pct", "cpu full", "s1", true],
  ["memory_full_pct", "mem full", "s2", true],
  ["io_full_pct", "io full", "s3", true],
];

/** The page's charts: name, id, title, value format, series as [label, colour class, dashed]. */
const CHARTS = [
  ["cpu", "cpu", "CPU (cores)", fmtNum, [["used", "s1"]]],
  ["throttle", "cpu-throttling", "CPU throttling (throttled periods/s)", fmtNum, [["throttled", "s5"]]],
  ["memory", "memory", "Memory", fmtBytes, [["usage", "s2"], ["working set", "s1"]], { binary: true }],
  ["io", "io", "Block I/O (all devices)", fmtRate, [["read", "s3"], ["write", "s4"]], { binary: true }],
  ["net", "network", "Network (all interfaces but lo)", fmtRate, [["rx", "s3"], ["tx", "s4"]], { binary: true }],
  ["pids", "pids", "PIDs (tasks)", fmtNum, [["current", "s1"]], { integer: true }],
  ["psi", "psi", "Pressure (avg10)", fmtPct, PSI.map(([, label, cls, dash]) => [label, cls, dash])],
];

/** The page's charts by name, empty until `drawCharts`. */
function makeCharts(parent) {
  return Object.fromEntries(
    CHARTS.map(([name, id, title, format, series, extra]) => [
      name,
      lineChart(parent, {
        id,
        title,
        format,
        series: series.map(([label, cls, dash]) => ({ label, cls, dash })),
        ...extra,
      }),
    ]),
  );
}

function drawCharts(charts, c) {
  const hist = c.history || [];
  const s = c.stats;
  const pick = (f) => hist.map((p) => [p.t_ms, p[f]]);
  const limitCores = cpuLimit(s);
  const memLimit = s.memory && s.memory.limit_bytes;
  const pidsLimit = s.pids && s.pids.limit;
  charts.cpu.update({
    series: [pick("cpu_cores")],
    limit: limitCores ? { value: limitCores, label: "limit" } : null,
  });
  charts.throttle.update({ series: [pick("cpu_throttled_periods_per_s")] });
  charts.memory.update({
    series: [pick("memory_usage_bytes"), pick("memory_working_set_bytes")],
    limit: memLimit ? { value: memLimit, label: "limit" } : null,
  });
  charts.io.update({ series: [pick("io_read_bytes_per_s"), pick("io_write_bytes_per_s")] });
  charts.net.update({ series: [pick("net_rx_bytes_per_s"), pick("net_tx_bytes_per_s")] });
  charts.pids.update({
    series: [pick("pids_current")],
    limit: pidsLimit ? { value: pidsLimit, label: "limit" } : null,
  });
  charts.psi.el.hidden = !hist.some((p) => p.pressure_avg10);
  charts.psi.update({
    series: PSI.map(([f]) => hist.map((p) => [p.t_ms, p.pressure_avg10 ? p.pressure_avg10[f] : null])),
  });
}

function heading(c, name) {
  const k = c.kubernetes;
  return [
    el(
      "h1",
      {},
      name,
      " ",
      el("span.badge", {}, c.kind),
      c.runtime ? el("span.badge", {}, c.runtime) : null,
      c.qos ? el("span.badge", {}, c.qos) : null,
      k && k.sandbox ? el("span.badge", {}, "sandbox") : null,
    ),
    el(
      "p.sub",
      {},
      [c.image, c.id ? shortId(c.id) : null, k && k.pod ? `pod ${k.namespace}/${k.pod}` : null]
        .filter(Boolean)
        .join(" · ") || c.cgroup,
    ),
  ];
}

function tiles(c) {
  const s = c.stats;
  const mem = s.memory || {};
  const pids = s.pids || {};
  const limitCores = cpuLimit(s);
  const memLimit = mem.limit_bytes;
  return [
    tile(
      "CPU",
      `${fmtCores(c.rates.cpu_cores)} cores`,
      limitCores ? `limit ${fmtNum(limitCores)} cores` : "no CPU limit",
      limitCores ? (c.rates.cpu_cores || 0) / limitCores : null,
    ),
    tile(
      "Memory",
      fmtBytes(mem.working_set_bytes),
      memLimit ? `working set · limit ${fmtBytes(memLimit)}` : "working set · no limit",
      memLimit ? (mem.working_set_bytes || 0) / memLimit : null,
    ),
    tile(
      "PIDs",
      pids.current == null ? "–" : String(pids.current),
      pids.limit ? `limit ${pids.limit}` : "no PID limit",
      pids.limit ? pids.current / pids.limit : null,
    ),
    tile("Network", `↓ ${fmtRate(c.rates.net_rx_bytes_per_s)}`, `↑ ${fmtRate(c.rates.net_tx_bytes_per_s)}`),
    tile("Block I/O", `R ${fmtRate(c.rates.io_read_bytes_per_s)}`, `W ${fmtRate(c.rates.io_write_bytes_per_s)}`),
  ];
}

/** Identity, limits and labels. */
function identitySections(c) {
  const k = c.kubernetes;
  const s = c.stats;
  const mem = s.memory || {};
  const cpu = s.cpu || {};
  const limitCores = cpuLimit(s);
  const labels = Object.entries(c.labels || {});
  return [
    section(
      "Identity",
      defs([
        ["Name", c.name],
        ["Kind", c.kind],
        ["Runtime", c.runtime],
        ["ID", c.id ? el("code.wrap", {}, c.id) : null],
        ["Image", c.image],
        ["Cgroup", el("code.wrap", {}, c.cgroup)],
        ["Namespace", k && k.namespace],
        ["Pod", k && k.pod],
        ["Container", k && k.container],
        ["Pod UID", c.pod_uid ? el("code.wrap", {}, c.pod_uid) : null],
        ["QoS", c.qos],
        ["Created", c.created_unix_s ? fmtAgo(c.created_unix_s * 1000) : null],
        ["Started", c.started_unix_s ? fmtAgo(c.started_unix_s * 1000) : null],
        ["First seen", fmtAgo(c.first_seen_unix_ms)],
      ]),
    ),
    section(
      "Limits",
      defs([
        [
          "CPU",
          limitCores
            ? `${fmtNum(limitCores)} cores (quota ${fmtInt(cpu.quota_us)} µs / period ${fmtInt(cpu.period_us)} µs)`
            : "unlimited",
        ],
        ["CPU shares", cpu.shares],
        ["CPU weight", cpu.weight],
        ["Memory", mem.limit_bytes ? fmtBytes(mem.limit_bytes) : "unlimited"],
        ["Memory + swap", mem.memsw_limit_bytes ? fmtBytes(mem.memsw_limit_bytes) : null],
        ["Swap", mem.swap_limit_bytes ? fmtBytes(mem.swap_limit_bytes) : null],
        ["PIDs", (s.pids && s.pids.limit) ?? "unlimited"],
      ]),
    ),
    section(
      "Labels",
      labels.length
        ? table(
            ["Key", "Value"],
            labels.map(([lk, lv]) =>
              el("tr", {}, el("td", {}, el("code.wrap", {}, lk)), el("td", {}, el("span.pre", {}, lv))),
            ),
          )
        : el("p.muted", {}, "No labels."),
    ),
  ];
}

function pressureTable(pressure) {
  const rows = ["cpu", "memory", "io"].flatMap((r) =>
    ["some", "full"].map((kind) => {
      const line = pressure[r] && pressure[r][kind];
      if (!line) return null;
      return el(
        "tr",
        { title: `total stall ${fmtMicros(line.total_us)}` },
        el("td.nowrap", {}, `${r} ${kind}`),
        [line.avg10_pct, line.avg60_pct, line.avg300_pct].map((v) => el("td.num", {}, fmtPct(v))),
        el("td.num", {}, fmtMicros(line.total_us)),
      );
    }),
  );
  if (!rows.some(Boolean)) return el("p.muted", {}, "Not reported (needs cgroup v2 and a kernel with PSI).");
  return table(
    [
      "",
      { label: "10 s", num: true },
      { label: "60 s", num: true },
      { label: "300 s", num: true },
      { label: "stalled", num: true },
    ],
    rows,
    "compact",
  );
}

/** CPU and tasks, memory, pressure: the counters of the latest sample. */
function statsSections(c) {
  const s = c.stats;
  const cpu = s.cpu || {};
  const mem = s.memory || {};
  const pids = s.pids || {};
  const throttledPct = cpu.periods ? (100 * (cpu.throttled_periods || 0)) / cpu.periods : null;
  const bytes = (v) => (v != null ? fmtBytes(v) : null);
  const seconds = (ns) => (ns != null ? `${fmtNum(ns / 1e9)} s` : null);
  return [
    section(
      "CPU and tasks",
      defs([
        ["Total time", seconds(cpu.usage_ns)],
        ["User", seconds(cpu.user_ns)],
        ["System", seconds(cpu.system_ns)],
        ["Periods", fmtInt(cpu.periods)],
        [
          "Throttled",
          cpu.throttled_periods != null
            ? `${fmtInt(cpu.throttled_periods)} periods${throttledPct != null ? ` (${fmtPct(throttledPct)})` : ""}, ${fmtNum((cpu.throttled_ns || 0) / 1e9)} s`
            : null,
        ],
        ["Tasks (pids controller)", pids.current],
        ["Processes in this cgroup", s.processes && s.processes.processes],
        ["Threads in this cgroup", s.processes && s.processes.threads],
      ]),
    ),
    section(
      "Memory",
      defs([
        ["Usage", fmtBytes(mem.usage_bytes)],
        ["Working set", fmtBytes(mem.working_set_bytes)],
        ["Peak", bytes(mem.max_usage_bytes)],
        ["RSS (anon)", bytes(mem.rss_bytes)],
        ["Page cache", bytes(mem.cache_bytes)],
        ["Inactive file", bytes(mem.inactive_file_bytes)],
        ["Mapped file", bytes(mem.mapped_file_bytes)],
        ["Kernel", bytes(mem.kernel_bytes)],
        ["Swap", bytes(mem.swap_bytes)],
        ["Page faults", mem.pgfault != null ? `${fmtInt(mem.pgfault)} (${fmtInt(mem.pgmajfault)} major)` : null],
        ["Limit hits", mem.failcnt != null ? fmtInt(mem.failcnt) : null],
        ["OOM kills", mem.oom_kills != null ? fmtInt(mem.oom_kills) : null],
      ]),
    ),
    section("Pressure (PSI)", pressureTable(s.pressure || {})),
  ];
}

function deviceSection(c) {
  const devices = (c.stats.io && c.stats.io.devices) || [];
  if (!devices.length) return section("Block I/O by device", el("p.muted", {}, "No block I/O recorded."));
  const rates = c.io_device_rates || [];
  const rateOf = (d) => rates.find((r) => r.major === d.major && r.minor === d.minor) || {};
  return section(
    "Block I/O by device",
    table(
      [
        "Device",
        { label: "Read", num: true },
        { label: "Written", num: true },
        { label: "Read/s", num: true },
        { label: "Write/s", num: true },
      ],
      devices.map((d) => {
        const r = rateOf(d);
        return el(
          "tr",
          { dataset: { device: `${d.major}:${d.minor}` } },
          el("td", {}, d.device || `${d.major}:${d.minor}`),
          el("td.num", {}, fmtBytes(d.read_bytes)),
          el("td.num", {}, fmtBytes(d.write_bytes)),
          el("td.num", {}, fmtRate(r.read_bytes_per_s)),
          el("td.num", {}, fmtRate(r.write_bytes_per_s)),
        );
      }),
    ),
  );
}

function interfaceSection(c) {
  const title = "Network by interface";
  const net = c.stats.network;
  if (net && net.host_namespace)
    return section(
      title,
      el("p.muted", {}, "Shares the host's network namespace: its traffic is the host's and is not counted here."),
    );
  const ifaces = (net && net.interfaces) || [];
  if (!ifaces.length) return section(title, el("p.muted", {}, "No network namespace of its own found."));
  const rates = c.network_interface_rates || [];
  const wrap = table(
    [
      "Interface",
      { label: "Received", num: true },
      { label: "Sent", num: true },
      { label: "Rx/s", num: true },
      { label: "Tx/s", num: true },
      { label: "Errors", num: true },
      { label: "Dropped", num: true },
    ],
    ifaces.map((n) => {
      const r = rates.find((x) => x.name === n.name) || {};
      return el(
        "tr",
        { dataset: { interface: n.name } },
        el("td", {}, n.name),
        el("td.num", {}, fmtBytes(n.rx_bytes)),
        el("td.num", {}, fmtBytes(n.tx_bytes)),
        el("td.num", {}, fmtRate(r.rx_bytes_per_s)),
        el("td.num", {}, fmtRate(r.tx_bytes_per_s)),
        el("td.num", {}, fmtInt(n.rx_errors + n.tx_errors)),
        el("td.num", {}, fmtInt(n.rx_dropped + n.tx_dropped)),
      );
    }),
  );
  wrap.querySelector("table").id = "interfaces";
  return section(title, wrap);
}

/** A pod's containers, from the list (the pod's own answer does not name them). */
async function podMembers(c) {
  const all = await api("/api/v1/containers");
  const members = all.filter((m) => m.kind === "container" && m.cgroup.startsWith(`${c.cgroup}/`));
  return section(
    "Containers in this pod",
    table(
      ["Container", { label: "CPU", num: true }, { label: "Memory", num: true }],
      members.map((m) =>
        el(
          "tr",
          { dataset: { key: keyOf(m) } },
          el("td", {}, el("a.row-link", { href: linkTo(m) }, displayName(m))),
          el("td.num", {}, fmtCores(m.rates.cpu_cores)),
          el("td.num", {}, fmtBytes(m.stats.memory && m.stats.memory.working_set_bytes)),
        ),
      ),
    ),
  );
}

export function containerDetail(main, key) {
  document.title = "cgscope · container";
  const head = el("div.detail-head");
  const gone = el("p.banner", { hidden: true });
  const tileRow = el("div.tiles");
  const chartGrid = el("div.charts");
  const charts = makeCharts(chartGrid);
  const details = el("div.columns");
  const more = el("div.columns");
  const perDevice = el("div.columns.wide");
  const pod = el("div");
  const procs = el("div");
  const crumb = el("span", {}, key);
  const view = el(
    "div.view",
    { dataset: { view: "detail", key } },
    el("nav.crumbs", { "aria-label": "Breadcrumb" }, el("a", { href: "#/containers" }, "Containers"), " › ", crumb),
    head,
    gone,
    tileRow,
    chartGrid,
    pod,
    procs,
    details,
    more,
    perDevice,
  );
  main.append(view);

  const procCpu = processCpu();
  let seen = false;
  // Process command lines are served only to loopback or authenticated clients (403 to
  // others): the rest of the page does without them.
  let processesForbidden = false;
  const detailPath = `/api/v1/containers/${enc(key)}?history=true`;
  const detail = () =>
    processesForbidden
      ? api(detailPath)
      : api(`${detailPath}&processes=true`).catch((e) => {
          if (e.status !== 403) throw e;
          processesForbidden = true;
          return api(detailPath);
        });

  return {
    failed(e) {
      if (e.status === 404) {
        gone.hidden = false;
        gone.textContent = seen
          ? "This container is gone: showing its last sample."
          : `No container, pod or cgroup “${key}”.`;
      }
    },
    async refresh() {
      const [, c] = await Promise.all([machine(), detail()]);
      // The server reads /proc while it answers: the arrival time is the reading's time.
      const tArrived = performance.now();
      seen = true;
      gone.hidden = true;
      const hist = c.history || [];
      learnInterval(hist);
      const name = displayName(c);
      document.title = `cgscope · ${name}`;
      crumb.textContent = name;
      head.replaceChildren(...heading(c, name));
      tileRow.replaceChildren(...tiles(c));
      drawCharts(charts, c);
      details.replaceChildren(...identitySections(c));
      more.replaceChildren(...statsSections(c));
      perDevice.replaceChildren(deviceSection(c), interfaceSection(c));
      procs.replaceChildren(
        (processesForbidden
          ? section(
              "Processes",
              el("p.muted", {}, "Shown only to clients on this machine (loopback) or authenticated ones."),
            )
          : processCard(c.processes, c.processes ? procCpu(tArrived, c.processes.processes) : new Map())) ?? "",
      );
      if (c.kind === "pod") pod.replaceChildren(await podMembers(c));
      // The sample the page shows (its newest point), for readers that compare it with the API.
      view.dataset.sampled = hist.length ? String(hist[hist.length - 1].t_ms) : "";
      view.dataset.loaded = "true";
    },
  };
}
