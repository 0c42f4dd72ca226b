// overview.js: the node page: machine tiles, the root cgroup's charts, the top containers.

import { lineChart } from "./chart.js";
import {
  bar,
  defs,
  displayName,
  el,
  enc,
  fmtAgo,
  fmtBytes,
  fmtCores,
  fmtNum,
  keyOf,
  linkTo,
  section,
  table,
  tile,
} from "./dom.js";
import { api, learnInterval, state } from "./live.js";

export function overview(main) {
  document.title = "cgscope · node";
  const head = el("h1", {}, "Node");
  const tiles = el("div.tiles");
  const charts = el("div.charts");
  const cpuChart = lineChart(charts, {
    id: "node-cpu",
    title: "Node CPU (cores)",
    format: fmtNum,
    series: [{ label: "used", cls: "s1" }],
  });
  const memChart = lineChart(charts, {
    id: "node-memory",
    title: "Node memory",
    format: fmtBytes,
    binary: true,
    series: [
      { label: "usage", cls: "s2" },
      { label: "working set", cls: "s1" },
    ],
  });
  const topCpu = el("div");
  const topMem = el("div");
  const info = el("div");
  main.append(
    el(
      "div.view",
      { dataset: { view: "overview" } },
      head,
      tiles,
      charts,
      el(
        "div.columns",
        {},
        section("Top containers by CPU", topCpu),
        section("Top containers by memory", topMem),
      ),
      section("Machine", info),
    ),
  );
  let rootMissing = false;

  function topTable(list, value, format, denominator) {
    if (!list.length) return el("p.muted", {}, "No containers.");
    return table(
      ["Container", { label: "", num: true }],
      list.map((c) =>
        el(
          "tr",
          { dataset: { key: keyOf(c) } },
          el(
            "td",
            {},
            el("a.row-link", { href: linkTo(c) }, displayName(c)),
            el(
              "div.sub",
              {},
              [c.runtime, c.kubernetes && c.kubernetes.namespace].filter(Boolean).join(" · "),
            ),
          ),
          el("td.num", {}, format(value(c)), denominator ? bar(value(c) / denominator, "") : null),
        ),
      ),
    );
  }

  return {
    async refresh() {
      const [m, list, root] = await Promise.all([
        api("/api/v1/machine"),
        api("/api/v1/containers"),
        rootMissing
          ? null
          : api(`/api/v1/containers/${enc("/")}?history=true`).catch((e) => {
              if (e.status === 404) rootMissing = true;
              return null;
            }),
      ]);
      state.machine = m;
      const containers = list.filter((c) => c.kind === "container");
      const pods = list.filter((c) => c.kind === "pod");
      head.replaceChildren("Node ", el("span.muted", {}, m.hostname || ""));
      const cores = m.logical_cores;
      const memTotal = m.memory_total_bytes;
      let cpuUsed = root && root.rates.cpu_cores;
      let memUsed = root && root.stats.memory && root.stats.memory.working_set_bytes;
      let basis = "all cgroups";
      if (cpuUsed == null || memUsed == null) {
        basis = "sum of containers";
        cpuUsed = containers.reduce((s, c) => s + (c.rates.cpu_cores || 0), 0);
        memUsed = containers.reduce(
          (s, c) => s + ((c.stats.memory && c.stats.memory.working_set_bytes) || 0),
          0,
        );
      }
      const runtimes = (m.runtimes || []).map((r) =>
        el(
          `span.badge.dot.${r.connected ? "ok" : "bad"}`,
          {
            title: `${r.connected ? "connected" : "disconnected"}: ${r.api_calls} API calls, ${r.errors} errors`,
          },
          `${r.runtime} ${r.connected ? "up" : "down"}`,
        ),
      );
      tiles.replaceChildren(
        tile(
          "CPU in use",
          `${fmtCores(cpuUsed)} cores`,
          `of ${cores ?? "?"} · ${basis}`,
          cores ? cpuUsed / cores : null,
        ),
        tile(
          "Memory in use",
          fmtBytes(memUsed),
          `working set of ${fmtBytes(memTotal)}`,
          memTotal ? memUsed / memTotal : null,
        ),
        tile("Containers", String(containers.length), `${pods.length} pods`),
        el(
          "div.tile",
          {},
          el("div.tile-label", {}, "Runtimes"),
          el("div.badges", {}, runtimes.length ? runtimes : el("span.muted", {}, "none")),
        ),
      );
      const hist = (root && root.history) || [];
      learnInterval(hist);
      charts.hidden = !root;
      cpuChart.update({
        series: [hist.map((p) => [p.t_ms, p.cpu_cores])],
        limit: cores ? { value: cores, label: "cores" } : null,
      });
      memChart.update({
        series: [
          hist.map((p) => [p.t_ms, p.memory_usage_bytes]),
          hist.map((p) => [p.t_ms, p.memory_working_set_bytes]),
        ],
        limit: memTotal ? { value: memTotal, label: "total" } : null,
      });
      const ws = (c) => (c.stats.memory && c.stats.memory.working_set_bytes) || 0;
      const byCpu = [...containers]
        .sort((a, b) => (b.rates.cpu_cores || 0) - (a.rates.cpu_cores || 0))
        .slice(0, 5);
      const byMem = [...containers].sort((a, b) => ws(b) - ws(a)).slice(0, 5);
      topCpu.replaceChildren(
        topTable(
          byCpu,
          (c) => c.rates.cpu_cores || 0,
          (v) => `${fmtCores(v)} cores`,
          cores,
        ),
      );
      topMem.replaceChildren(topTable(byMem, ws, fmtBytes, memTotal));
      info.replaceChildren(
        defs([
          ["Hostname", m.hostname],
          ["Logical cores", m.logical_cores],
          ["Memory", fmtBytes(m.memory_total_bytes)],
          ["Swap", m.swap_total_bytes ? fmtBytes(m.swap_total_bytes) : "none"],
          ["Kernel", m.kernel_version],
          [
            "Cgroup layout",
            { v1: "v1", v2: "v2 (unified)", hybrid: "hybrid (v1 controllers + unified)" }[m.cgroup_layout] ||
              m.cgroup_layout,
          ],
          ["Machine ID", m.machine_id ? el("code", {}, m.machine_id) : null],
          ["Boot ID", m.boot_id ? el("code", {}, m.boot_id) : null],
          ["Sampled", fmtAgo(m.sampled_at_unix_ms)],
        ]),
      );
      main.querySelector(".view").dataset.loaded = "true";
    },
  };
}
