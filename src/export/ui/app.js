// app.js: cgscope's debugging UI. A hash router over three views (node overview, container
// list, container detail) that poll the JSON API once per sampler interval. The DOM is built
// node by node, never from HTML strings, so names and labels cannot inject markup.

import { lineChart } from "./chart.js";

const state = {
  // Sampler interval, learned from the spacing of history points; polls follow it.
  intervalMs: 2000,
  intervalKnown: false,
  paused: false,
  view: null,
  timer: 0,
  // Increases per poll() call, so an older poll never schedules a second timer.
  pollGen: 0,
  // Hash changes since the page loaded: "back" stays inside the app only when there were some.
  moves: 0,
  machine: null,
  // The server has a token login (GET /login answers with the form): a 401 then means the
  // session ended, and the header offers to log out.
  login: false,
};

// ---- DOM and formatting helpers ------------------------------------------------------------

/** el("a.link", {href}, child, ...): an element with classes, attributes, listeners, children. */
function el(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split(".");
  const node = document.createElement(tag);
  if (classes.length) node.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  node.append(
    ...children
      .flat(Infinity)
      .filter((c) => c != null && c !== false)
      .map((c) => (c instanceof Node ? c : String(c))),
  );
  return node;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

function fmtBytes(n) {
  if (n == null) return "–";
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  const num = i === 0 ? Math.round(v) : v < 10 ? Number(v.toFixed(1)) : Math.round(v);
  return `${num} ${UNITS[i]}`;
}
const fmtRate = (n) => (n == null ? "–" : `${fmtBytes(n)}/s`);
const fmtNum = (v) =>
  v == null ? "–" : Math.abs(v) >= 100 ? String(Math.round(v)) : String(Number(v.toPrecision(3)));
const fmtCores = (v) => (v == null ? "–" : v.toFixed(2));
const fmtPct = (v) => (v == null ? "–" : `${fmtNum(v)}%`);
const fmtInt = (v) => (v == null ? "–" : Number(v).toLocaleString("en-US"));
const fmtMicros = (us) =>
  us == null
    ? "–"
    : us < 1000
      ? `${Math.round(us)} µs`
      : us < 1e6
        ? `${fmtNum(us / 1000)} ms`
        : `${fmtNum(us / 1e6)} s`;

function fmtAgo(unixMs) {
  if (!unixMs) return "–";
  const s = Math.max(0, Math.round((Date.now() - unixMs) / 1000));
  const ago =
    s < 90
      ? `${s}s`
      : s < 5400
        ? `${Math.round(s / 60)}m`
        : s < 172800
          ? `${Math.round(s / 3600)}h`
          : `${Math.round(s / 86400)}d`;
  return `${new Date(unixMs).toLocaleString()} (${ago} ago)`;
}

const shortId = (id) => (id ? id.slice(0, 12) : null);
const enc = encodeURIComponent;

/** The key a container is addressed by in links and API calls: its id, else its cgroup. */
const keyOf = (c) => c.id || c.cgroup;
const linkTo = (c) => `#/containers/${enc(keyOf(c))}`;

function displayName(c) {
  if (c.kind === "cgroup") return c.cgroup;
  const k = c.kubernetes;
  if (c.name) return c.name;
  if (k && k.sandbox && k.pod) return `${k.pod} (sandbox)`;
  return shortId(c.id) || c.cgroup;
}

/** CPU limit in cores (quota / period), or null when unlimited. */
function cpuLimit(stats) {
  const cpu = stats && stats.cpu;
  return cpu && cpu.quota_us && cpu.period_us ? cpu.quota_us / cpu.period_us : null;
}

function bar(fraction, label) {
  const fill = el("i");
  fill.style.width = `${Math.min(100, Math.max(0, fraction * 100)).toFixed(1)}%`;
  if (fraction >= 0.9) fill.className = "hot";
  return el("span.bar", { title: label }, fill);
}

// ---- API and polling -----------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path) {
  let res;
  try {
    res = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
  } catch (e) {
    throw new ApiError(0, "cannot reach cgscope");
  }
  if (res.status === 401 && state.login) {
    location.assign("/login");
  }
  if (!res.ok) {
    let message = res.statusText;
    try {
      message = (await res.json()).error || message;
    } catch (e) {
      // Not JSON: keep the status text.
    }
    throw new ApiError(res.status, message);
  }
  return res.json();
}

/** Learns the sampler interval from a history (median spacing of its points). */
function learnInterval(points) {
  if (!points || points.length < 3) return;
  const gaps = [];
  for (let i = 1; i < points.length; i++) gaps.push(points[i].t_ms - points[i - 1].t_ms);
  gaps.sort((a, b) => a - b);
  const median = gaps[gaps.length >> 1];
  if (median > 0) {
    state.intervalMs = Math.min(30_000, Math.max(500, median));
    state.intervalKnown = true;
  }
}

/** Views without a history of their own learn the interval from the oldest cgroup's. */
function learnIntervalFrom(list) {
  if (state.intervalKnown || !list.length) return;
  const oldest = list.reduce((a, b) => (b.first_seen_unix_ms < a.first_seen_unix_ms ? b : a));
  api(`/api/v1/containers/${enc(keyOf(oldest))}?history=true`)
    .then((c) => learnInterval(c.history))
    .catch(() => {});
}

function setStatus(kind, text) {
  const node = document.getElementById("status");
  node.className = `status ${kind}`;
  node.textContent = text;
  node.title = text;
}

async function poll() {
  clearTimeout(state.timer);
  const gen = ++state.pollGen;
  const view = state.view;
  if (view && !state.paused && !document.hidden) {
    try {
      await view.refresh();
      if (view === state.view)
        setStatus("live", state.intervalKnown ? `live · every ${fmtNum(state.intervalMs / 1000)}s` : "live");
    } catch (e) {
      if (view === state.view) {
        setStatus("error", e.status === 0 ? "offline: cannot reach cgscope" : `error: ${e.message}`);
        view.failed?.(e);
      }
    }
  }
  if (gen === state.pollGen) state.timer = setTimeout(poll, state.intervalMs);
}

async function machine() {
  if (!state.machine) state.machine = await api("/api/v1/machine");
  return state.machine;
}

// ---- Small building blocks -----------------------------------------------------------------

function tile(label, value, sub, fraction) {
  return el(
    "div.tile",
    {},
    el("div.tile-label", {}, label),
    el("div.tile-value", {}, value),
    sub ? el("div.tile-sub", {}, sub) : null,
    fraction != null ? bar(fraction, sub || "") : null,
  );
}

function defs(pairs) {
  const rows = pairs.filter(([, v]) => v != null && v !== "");
  if (!rows.length) return el("p.muted", {}, "Nothing reported.");
  return el(
    "dl.defs",
    {},
    rows.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]),
  );
}

function section(title, ...body) {
  return el("section.card", {}, el("h2", {}, title), ...body);
}

function table(head, rows, cls) {
  return el(
    "div.table-wrap",
    {},
    el(
      `table.${cls || "plain"}`,
      {},
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          head.map((h) =>
            el(
              "th",
              {
                scope: "col",
                class: [h.num ? "num" : "", h.cls || ""].join(" ").trim() || null,
                title: h.title,
              },
              typeof h === "string" ? h : h.label,
            ),
          ),
        ),
      ),
      el("tbody", {}, rows),
    ),
  );
}

// ---- Overview ------------------------------------------------------------------------------

function overview(main) {
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

// ---- Container list ------------------------------------------------------------------------

const COLUMNS = [
  { key: "name", label: "Name", value: (c) => displayName(c).toLowerCase() },
  { key: "runtime", label: "Runtime", cls: "c-opt", value: (c) => c.runtime || "" },
  { key: "image", label: "Image", cls: "c-opt", value: (c) => c.image || "" },
  {
    key: "namespace",
    label: "Namespace",
    cls: "c-opt",
    value: (c) => (c.kubernetes && c.kubernetes.namespace) || "",
  },
  { key: "pod", label: "Pod", cls: "c-opt", value: (c) => (c.kubernetes && c.kubernetes.pod) || "" },
  {
    key: "container",
    label: "Container",
    cls: "c-opt",
    value: (c) => (c.kubernetes && c.kubernetes.container) || "",
  },
  { key: "cpu", label: "CPU", num: true, value: (c) => c.rates.cpu_cores || 0 },
  {
    key: "memory",
    label: "Memory",
    num: true,
    value: (c) => (c.stats.memory && c.stats.memory.working_set_bytes) || 0,
  },
  {
    key: "pids",
    label: "PIDs",
    num: true,
    cls: "c-pids",
    value: (c) => (c.stats.pids && c.stats.pids.current) || 0,
  },
];

const SHOW = { containers: "Containers", pods: "Pods", cgroups: "All cgroups" };

function containerList(main, params) {
  document.title = "cgscope · containers";
  const opts = {
    q: params.get("q") || "",
    runtime: params.get("runtime") || "",
    ns: params.get("ns") || "",
    show: SHOW[params.get("show")] ? params.get("show") : "containers",
    sort: COLUMNS.some((c) => c.key === params.get("sort")) ? params.get("sort") : "cpu",
    desc: params.has("sort") ? params.get("desc") === "1" : true,
    group: params.get("group") !== "0",
  };
  let items = [];

  // Keeps the filters in the address (replaced, not pushed: back leaves the list).
  function remember() {
    const p = new URLSearchParams();
    if (opts.q) p.set("q", opts.q);
    if (opts.runtime) p.set("runtime", opts.runtime);
    if (opts.ns) p.set("ns", opts.ns);
    if (opts.show !== "containers") p.set("show", opts.show);
    if (opts.sort !== "cpu" || !opts.desc) {
      p.set("sort", opts.sort);
      p.set("desc", opts.desc ? "1" : "0");
    }
    if (!opts.group) p.set("group", "0");
    const qs = p.toString();
    history.replaceState(null, "", `#/containers${qs ? `?${qs}` : ""}`);
  }

  const filter = el("input.filter", {
    id: "filter",
    type: "search",
    placeholder: "Filter: name, image, id, pod, namespace…",
    "aria-label": "Filter containers",
    value: opts.q,
    autocomplete: "off",
    spellcheck: "false",
    oninput: () => {
      opts.q = filter.value;
      remember();
      render();
    },
    onkeydown: (ev) => {
      if (ev.key === "Escape") {
        filter.value = "";
        opts.q = "";
        remember();
        render();
        filter.blur();
      }
    },
  });
  filter.value = opts.q;
  const runtimeSel = el("select", {
    id: "runtime",
    "aria-label": "Runtime",
    onchange: () => {
      opts.runtime = runtimeSel.value;
      remember();
      render();
    },
  });
  const nsSel = el("select", {
    id: "namespace",
    "aria-label": "Kubernetes namespace",
    onchange: () => {
      opts.ns = nsSel.value;
      remember();
      render();
    },
  });
  const showSel = el(
    "select",
    {
      id: "show",
      "aria-label": "Show",
      onchange: () => {
        opts.show = showSel.value;
        remember();
        items = [];
        render();
        poll();
      },
    },
    Object.entries(SHOW).map(([k, v]) => el("option", { value: k, selected: k === opts.show }, v)),
  );
  const groupLabel = el("label.check");
  const groupBox = el("input", {
    type: "checkbox",
    id: "group",
    checked: opts.group,
    onchange: () => {
      opts.group = groupBox.checked;
      remember();
      render();
    },
  });
  groupLabel.append(groupBox, " Group by pod");
  const count = el("p.count", { "aria-live": "polite" });
  const headRow = el("tr");
  const tableEl = el("table.list", { id: "containers" }, el("thead", {}, headRow));
  main.append(
    el(
      "div.view",
      { dataset: { view: "containers" } },
      el("h1", {}, "Containers"),
      el("div.toolbar", {}, filter, runtimeSel, nsSel, showSel, groupLabel, count),
      el("div.table-wrap", {}, tableEl),
    ),
  );

  // Rebuilt only when the choices change, so an open drop-down survives a refresh.
  function options(select, values, current, allLabel) {
    const all = [...new Set([...values, current].filter(Boolean))].sort();
    if (select.dataset.choices === all.join("\n") && select.options.length) return;
    select.dataset.choices = all.join("\n");
    select.replaceChildren(
      el("option", { value: "" }, allLabel),
      all.map((v) => el("option", { value: v, selected: v === current }, v)),
    );
    select.value = current;
  }

  function matches(c) {
    if (opts.show === "containers" && c.kind !== "container") return false;
    if (opts.show === "pods" && c.kind !== "pod") return false;
    const k = c.kubernetes || {};
    if (opts.runtime && c.runtime !== opts.runtime) return false;
    if (opts.ns && k.namespace !== opts.ns) return false;
    const hay = [displayName(c), c.id, c.image, c.cgroup, c.runtime, k.pod, k.namespace, k.container]
      .filter(Boolean)
      .join(" ")
      .toLowerCase();
    return opts.q
      .toLowerCase()
      .split(/\s+/)
      .filter(Boolean)
      .every((w) => hay.includes(w));
  }

  function row(c) {
    const k = c.kubernetes || {};
    const mem = c.stats.memory || {};
    const pids = c.stats.pids || {};
    const cores = state.machine && state.machine.logical_cores;
    const cpuDen = cpuLimit(c.stats) || cores;
    const memDen = mem.limit_bytes || (state.machine && state.machine.memory_total_bytes);
    const sub = [c.runtime, c.image, k.namespace && k.pod ? `${k.namespace}/${k.pod}` : null]
      .filter(Boolean)
      .join(" · ");
    return el(
      "tr",
      { dataset: { key: keyOf(c), name: c.name || "", kind: c.kind }, class: k.sandbox ? "sandbox" : null },
      el(
        "td.name",
        {},
        el("a.row-link", { href: linkTo(c), title: c.cgroup }, displayName(c)),
        opts.show === "cgroups" && displayName(c) !== c.cgroup ? el("div.sub.wrap", {}, c.cgroup) : null,
        sub ? el("div.sub.narrow-only", {}, sub) : null,
      ),
      el("td.c-opt", {}, c.runtime || ""),
      el("td.c-opt.image", { title: c.image || "" }, c.image || ""),
      el("td.c-opt", {}, k.namespace || ""),
      el("td.c-opt", {}, k.pod || ""),
      el("td.c-opt", {}, k.container || (k.sandbox ? "(sandbox)" : "")),
      el(
        "td.num",
        {},
        fmtCores(c.rates.cpu_cores),
        cpuDen
          ? bar((c.rates.cpu_cores || 0) / cpuDen, cpuLimit(c.stats) ? "of the CPU limit" : "of the machine")
          : null,
      ),
      el(
        "td.num",
        { title: mem.limit_bytes ? `limit ${fmtBytes(mem.limit_bytes)}` : "no limit" },
        fmtBytes(mem.working_set_bytes),
        memDen
          ? bar(
              (mem.working_set_bytes || 0) / memDen,
              mem.limit_bytes ? "of the memory limit" : "of the machine",
            )
          : null,
      ),
      el(
        "td.num.c-pids",
        {},
        pids.current == null ? "–" : pids.limit ? `${pids.current} / ${pids.limit}` : String(pids.current),
      ),
    );
  }

  function render() {
    const col = COLUMNS.find((c) => c.key === opts.sort);
    headRow.replaceChildren(
      ...COLUMNS.map((c) => {
        const active = c.key === opts.sort;
        return el(
          "th",
          {
            scope: "col",
            class: [c.num ? "num" : "", c.cls || ""].join(" ").trim() || null,
            "aria-sort": active ? (opts.desc ? "descending" : "ascending") : null,
          },
          el(
            "button.sort",
            {
              type: "button",
              dataset: { sort: c.key },
              onclick: () => {
                opts.desc = opts.sort === c.key ? !opts.desc : !!c.num;
                opts.sort = c.key;
                remember();
                render();
                tableEl.querySelector(`button[data-sort="${c.key}"]`).focus();
              },
            },
            c.label,
            el("span.arrow", { "aria-hidden": "true" }, active ? (opts.desc ? "▼" : "▲") : ""),
          ),
        );
      }),
    );
    options(
      runtimeSel,
      items.map((c) => c.runtime),
      opts.runtime,
      "All runtimes",
    );
    options(
      nsSel,
      items.map((c) => c.kubernetes && c.kubernetes.namespace),
      opts.ns,
      "All namespaces",
    );
    runtimeSel.hidden = opts.show === "cgroups";
    nsSel.hidden = opts.show === "cgroups";
    groupLabel.hidden = opts.show !== "containers";

    const shown = items.filter(matches);
    const cmp = (a, b) => {
      const va = col.value(a);
      const vb = col.value(b);
      const r = typeof va === "number" ? va - vb : va.localeCompare(vb);
      return (opts.desc ? -r : r) || displayName(a).localeCompare(displayName(b));
    };
    // Groups: one per pod (when Kubernetes names exist), one per other container.
    const pods = new Map(
      items
        .filter((c) => c.kind === "pod")
        .map((p) => [p.pod_uid || `${p.kubernetes?.namespace}/${p.kubernetes?.pod}`, p]),
    );
    const groups = new Map();
    for (const c of shown) {
      const k = c.kubernetes;
      const podKey =
        opts.group && opts.show === "containers" && k && k.pod
          ? c.pod_uid || `${k.namespace}/${k.pod}`
          : null;
      const key = podKey ? `pod:${podKey}` : `one:${c.cgroup}`;
      if (!groups.has(key))
        groups.set(key, {
          pod: podKey ? pods.get(podKey) || { kind: "pod", kubernetes: k, rates: {}, stats: {} } : null,
          members: [],
        });
      groups.get(key).members.push(c);
    }
    const groupValue = (g) => {
      if (!g.pod) return col.value(g.members[0]);
      if (col.num) return g.pod.cgroup ? col.value(g.pod) : g.members.reduce((s, c) => s + col.value(c), 0);
      return col.key === "name" ? (g.pod.kubernetes.pod || "").toLowerCase() : col.value(g.members[0]);
    };
    const ordered = [...groups.values()].sort((a, b) => {
      const va = groupValue(a);
      const vb = groupValue(b);
      const r = typeof va === "number" ? va - vb : va.localeCompare(vb);
      return opts.desc ? -r : r;
    });

    const focused = document.activeElement && document.activeElement.closest("tr[data-key]");
    const focusKey = focused && focused.dataset.key;
    tableEl.querySelectorAll("tbody").forEach((b) => b.remove());
    if (!shown.length) {
      const what = opts.show === "cgroups" ? "cgroups" : opts.show;
      tableEl.append(
        el(
          "tbody",
          {},
          el(
            "tr.empty",
            {},
            el(
              "td",
              { colspan: COLUMNS.length },
              items.length ? `No ${what} match the filter.` : `No ${what} yet.`,
            ),
          ),
        ),
      );
    }
    for (const g of ordered) {
      const body = el("tbody", { class: g.pod ? "pod-group" : null });
      if (g.pod) {
        const k = g.pod.kubernetes || {};
        const title = `${k.namespace ? `${k.namespace}/` : ""}${k.pod}`;
        body.append(
          el(
            "tr.group",
            {},
            el(
              "th",
              { colspan: COLUMNS.length, scope: "rowgroup" },
              el("span.badge", {}, "pod"),
              " ",
              g.pod.cgroup ? el("a", { href: linkTo(g.pod) }, title) : title,
              el(
                "span.muted",
                {},
                ` · ${g.members.length} container${g.members.length === 1 ? "" : "s"}${g.pod.qos ? ` · ${g.pod.qos}` : ""}`,
              ),
              g.pod.cgroup
                ? el(
                    "span.group-stats",
                    {},
                    `${fmtCores(g.pod.rates.cpu_cores)} cores · ${fmtBytes(g.pod.stats.memory && g.pod.stats.memory.working_set_bytes)}`,
                  )
                : null,
            ),
          ),
        );
      }
      body.append(...g.members.sort(cmp).map(row));
      tableEl.append(body);
    }
    const total = items.filter(
      (c) => opts.show === "cgroups" || c.kind === (opts.show === "pods" ? "pod" : "container"),
    ).length;
    count.textContent = `${shown.length} of ${total} ${opts.show === "cgroups" ? "cgroups" : opts.show}`;
    if (focusKey) {
      const again = [...tableEl.querySelectorAll("tr[data-key]")].find((r) => r.dataset.key === focusKey);
      again?.querySelector("a.row-link")?.focus({ preventScroll: true });
    }
  }

  render();
  return {
    async refresh() {
      const [, list] = await Promise.all([
        machine(),
        api(opts.show === "cgroups" ? "/api/v1/cgroups" : "/api/v1/containers"),
      ]);
      items = list;
      learnIntervalFrom(list);
      render();
      main.querySelector(".view").dataset.loaded = "true";
    },
  };
}

// ---- Container detail ----------------------------------------------------------------------

/** Per-second rates of named counters between two polls (per device, per interface). */
function counterRates() {
  let prev = null;
  return (tMs, counters) => {
    const out = new Map();
    if (prev && tMs > prev.t) {
      for (const [name, values] of counters) {
        const before = prev.counters.get(name);
        if (!before) continue;
        out.set(
          name,
          values.map((v, i) =>
            v != null && before[i] != null && v >= before[i]
              ? ((v - before[i]) * 1000) / (tMs - prev.t)
              : null,
          ),
        );
      }
    }
    if (!prev || tMs > prev.t) prev = { t: tMs, counters, rates: out };
    return prev.rates;
  };
}

/** Identity of a process across polls: a recycled pid with another start time is another one. */
const procKey = (p) => `${p.pid}@${p.start_unix_s}`;

/** CPU use of each process between two polls, % of one core, keyed by procKey. */
function processCpu() {
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
function processCard(list, cpuPct) {
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
// kept across page changes (for the last few containers looked at).
const pressureSeries = new Map();

function pressureOf(key) {
  let entry = pressureSeries.get(key);
  if (!entry) {
    entry = { lastT: 0, series: [[], [], [], [], [], []] };
    pressureSeries.set(key, entry);
    if (pressureSeries.size > 32) pressureSeries.delete(pressureSeries.keys().next().value);
  }
  return entry;
}

function containerDetail(main, key) {
  document.title = "cgscope · container";
  const head = el("div.detail-head");
  const gone = el("p.banner", { hidden: true });
  const tiles = el("div.tiles");
  const charts = el("div.charts");
  const cpu = lineChart(charts, {
    id: "cpu",
    title: "CPU (cores)",
    format: fmtNum,
    series: [{ label: "used", cls: "s1" }],
  });
  const throttle = lineChart(charts, {
    id: "cpu-throttling",
    title: "CPU throttling (throttled periods/s)",
    format: fmtNum,
    series: [{ label: "throttled", cls: "s5" }],
  });
  const memory = lineChart(charts, {
    id: "memory",
    title: "Memory",
    format: fmtBytes,
    binary: true,
    series: [
      { label: "usage", cls: "s2" },
      { label: "working set", cls: "s1" },
    ],
  });
  const io = lineChart(charts, {
    id: "io",
    title: "Block I/O (all devices)",
    format: fmtRate,
    binary: true,
    series: [
      { label: "read", cls: "s3" },
      { label: "write", cls: "s4" },
    ],
  });
  const net = lineChart(charts, {
    id: "network",
    title: "Network (all interfaces but lo)",
    format: fmtRate,
    binary: true,
    series: [
      { label: "rx", cls: "s3" },
      { label: "tx", cls: "s4" },
    ],
  });
  const pidsChart = lineChart(charts, {
    id: "pids",
    title: "PIDs (tasks)",
    format: fmtNum,
    integer: true,
    series: [{ label: "current", cls: "s1" }],
  });
  const psiChart = lineChart(charts, {
    id: "psi",
    title: "Pressure (avg10, sampled by this page)",
    format: fmtPct,
    series: [
      { label: "cpu some", cls: "s1" },
      { label: "mem some", cls: "s2" },
      { label: "io some", cls: "s3" },
      { label: "cpu full", cls: "s1", dash: true },
      { label: "mem full", cls: "s2", dash: true },
      { label: "io full", cls: "s3", dash: true },
    ],
  });
  const details = el("div.columns");
  const more = el("div.columns");
  const perDevice = el("div.columns.wide");
  const pod = el("div");
  const procs = el("div");
  main.append(
    el(
      "div.view",
      { dataset: { view: "detail", key } },
      el(
        "nav.crumbs",
        { "aria-label": "Breadcrumb" },
        el("a", { href: "#/containers" }, "Containers"),
        " › ",
        el("span", {}, key),
      ),
      head,
      gone,
      tiles,
      charts,
      pod,
      procs,
      details,
      more,
      perDevice,
    ),
  );

  const psi = pressureOf(key);
  const ioRates = counterRates();
  const netRates = counterRates();
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
      const [, c] = await Promise.all([
        machine(),
        detail(),
      ]);
      // The server reads /proc while it answers: the arrival time is the reading's time.
      const tArrived = performance.now();
      seen = true;
      gone.hidden = true;
      const hist = c.history || [];
      learnInterval(hist);
      const s = c.stats;
      const k = c.kubernetes;
      const mem = s.memory || {};
      const pids = s.pids || {};
      const cpuStats = s.cpu || {};
      const limitCores = cpuLimit(s);
      const tNow = hist.length ? hist[hist.length - 1].t_ms : Date.now();
      const name = displayName(c);
      document.title = `cgscope · ${name}`;
      main.querySelector(".crumbs span").textContent = name;

      head.replaceChildren(
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
      );

      const memLimit = mem.limit_bytes;
      tiles.replaceChildren(
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
        tile(
          "Network",
          `↓ ${fmtRate(c.rates.net_rx_bytes_per_s)}`,
          `↑ ${fmtRate(c.rates.net_tx_bytes_per_s)}`,
        ),
        tile(
          "Block I/O",
          `R ${fmtRate(c.rates.io_read_bytes_per_s)}`,
          `W ${fmtRate(c.rates.io_write_bytes_per_s)}`,
        ),
      );

      // Charts from the server's history; throttling is a counter, charted as a rate.
      const pick = (f) => hist.map((p) => [p.t_ms, p[f]]);
      const throttled = hist.map((p, i) => {
        const q = hist[i - 1];
        if (
          !q ||
          p.cpu_throttled_periods == null ||
          q.cpu_throttled_periods == null ||
          p.cpu_throttled_periods < q.cpu_throttled_periods
        )
          return [p.t_ms, null];
        return [p.t_ms, ((p.cpu_throttled_periods - q.cpu_throttled_periods) * 1000) / (p.t_ms - q.t_ms)];
      });
      cpu.update({
        series: [pick("cpu_cores")],
        limit: limitCores ? { value: limitCores, label: "limit" } : null,
      });
      throttle.update({ series: [throttled] });
      memory.update({
        series: [pick("memory_usage_bytes"), pick("memory_working_set_bytes")],
        limit: memLimit ? { value: memLimit, label: "limit" } : null,
      });
      io.update({ series: [pick("io_read_bytes_per_s"), pick("io_write_bytes_per_s")] });
      net.update({ series: [pick("net_rx_bytes_per_s"), pick("net_tx_bytes_per_s")] });
      pidsChart.update({
        series: [pick("pids_current")],
        limit: pids.limit ? { value: pids.limit, label: "limit" } : null,
      });

      // PSI is not in the history: accumulate the avg10 values of successive polls.
      const pr = s.pressure || {};
      if (tNow > psi.lastT) {
        const lines = [
          pr.cpu?.some,
          pr.memory?.some,
          pr.io?.some,
          pr.cpu?.full,
          pr.memory?.full,
          pr.io?.full,
        ];
        // After a pause (another page, a hidden tab) break the line rather than bridge it.
        const gap = psi.lastT && tNow - psi.lastT > 3 * state.intervalMs;
        lines.forEach((line, i) => {
          if (gap) psi.series[i].push([tNow - 1, null]);
          psi.series[i].push([tNow, line ? line.avg10_pct : null]);
          if (psi.series[i].length > 600) psi.series[i].shift();
        });
        psi.lastT = tNow;
      }
      psiChart.el.hidden = !s.pressure;
      psiChart.update({ series: psi.series });

      // Per-device and per-interface rates, from successive polls of the counters.
      const devices = (s.io && s.io.devices) || [];
      const devName = (d) => d.device || `${d.major}:${d.minor}`;
      const devRates = ioRates(
        tNow,
        new Map(devices.map((d) => [devName(d), [d.read_bytes, d.write_bytes]])),
      );
      const ifaces = (s.network && s.network.interfaces) || [];
      const ifRates = netRates(tNow, new Map(ifaces.map((n) => [n.name, [n.rx_bytes, n.tx_bytes]])));

      const labels = Object.entries(c.labels || {});
      details.replaceChildren(
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
                ? `${fmtNum(limitCores)} cores (quota ${fmtInt(cpuStats.quota_us)} µs / period ${fmtInt(cpuStats.period_us)} µs)`
                : "unlimited",
            ],
            ["CPU shares", cpuStats.shares],
            ["CPU weight", cpuStats.weight],
            ["Memory", memLimit ? fmtBytes(memLimit) : "unlimited"],
            ["Memory + swap", mem.memsw_limit_bytes ? fmtBytes(mem.memsw_limit_bytes) : null],
            ["Swap", mem.swap_limit_bytes ? fmtBytes(mem.swap_limit_bytes) : null],
            ["PIDs", pids.limit ?? "unlimited"],
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
      );

      const pressureRows = ["cpu", "memory", "io"].flatMap((r) =>
        ["some", "full"].map((kind) => {
          const line = pr[r] && pr[r][kind];
          if (!line) return null;
          const cells = [line.avg10_pct, line.avg60_pct, line.avg300_pct].map((v) =>
            el("td.num", {}, fmtPct(v)),
          );
          return el(
            "tr",
            { title: `total stall ${fmtMicros(line.total_us)}` },
            el("td.nowrap", {}, `${r} ${kind}`),
            cells,
            el("td.num", {}, fmtMicros(line.total_us)),
          );
        }),
      );
      const throttledPct = cpuStats.periods
        ? (100 * (cpuStats.throttled_periods || 0)) / cpuStats.periods
        : null;
      more.replaceChildren(
        section(
          "CPU and tasks",
          defs([
            ["Total time", cpuStats.usage_ns != null ? `${fmtNum(cpuStats.usage_ns / 1e9)} s` : null],
            ["User", cpuStats.user_ns != null ? `${fmtNum(cpuStats.user_ns / 1e9)} s` : null],
            ["System", cpuStats.system_ns != null ? `${fmtNum(cpuStats.system_ns / 1e9)} s` : null],
            ["Periods", fmtInt(cpuStats.periods)],
            [
              "Throttled",
              cpuStats.throttled_periods != null
                ? `${fmtInt(cpuStats.throttled_periods)} periods${throttledPct != null ? ` (${fmtPct(throttledPct)})` : ""}, ${fmtNum((cpuStats.throttled_ns || 0) / 1e9)} s`
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
            ["Peak", mem.max_usage_bytes != null ? fmtBytes(mem.max_usage_bytes) : null],
            ["RSS (anon)", mem.rss_bytes != null ? fmtBytes(mem.rss_bytes) : null],
            ["Page cache", mem.cache_bytes != null ? fmtBytes(mem.cache_bytes) : null],
            ["Inactive file", mem.inactive_file_bytes != null ? fmtBytes(mem.inactive_file_bytes) : null],
            ["Mapped file", mem.mapped_file_bytes != null ? fmtBytes(mem.mapped_file_bytes) : null],
            ["Kernel", mem.kernel_bytes != null ? fmtBytes(mem.kernel_bytes) : null],
            ["Swap", mem.swap_bytes != null ? fmtBytes(mem.swap_bytes) : null],
            [
              "Page faults",
              mem.pgfault != null ? `${fmtInt(mem.pgfault)} (${fmtInt(mem.pgmajfault)} major)` : null,
            ],
            ["Limit hits", mem.failcnt != null ? fmtInt(mem.failcnt) : null],
            ["OOM kills", mem.oom_kills != null ? fmtInt(mem.oom_kills) : null],
          ]),
        ),
        section(
          "Pressure (PSI)",
          pressureRows.some(Boolean)
            ? table(
                [
                  "",
                  { label: "10 s", num: true },
                  { label: "60 s", num: true },
                  { label: "300 s", num: true },
                  { label: "stalled", num: true },
                ],
                pressureRows,
                "compact",
              )
            : el("p.muted", {}, "Not reported (needs cgroup v2 and a kernel with PSI)."),
        ),
      );
      perDevice.replaceChildren(
        section(
          "Block I/O by device",
          devices.length
            ? table(
                [
                  "Device",
                  { label: "Read", num: true },
                  { label: "Written", num: true },
                  { label: "Read/s", num: true },
                  { label: "Write/s", num: true },
                ],
                devices.map((d) => {
                  const r = devRates.get(devName(d)) || [];
                  return el(
                    "tr",
                    {},
                    el("td", {}, devName(d)),
                    el("td.num", {}, fmtBytes(d.read_bytes)),
                    el("td.num", {}, fmtBytes(d.write_bytes)),
                    el("td.num", {}, fmtRate(r[0])),
                    el("td.num", {}, fmtRate(r[1])),
                  );
                }),
              )
            : el("p.muted", {}, "No block I/O recorded."),
        ),
        section(
          "Network by interface",
          s.network && s.network.host_namespace
            ? el(
                "p.muted",
                {},
                "Shares the host's network namespace: its traffic is the host's and is not counted here.",
              )
            : ifaces.length
              ? table(
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
                    const r = ifRates.get(n.name) || [];
                    return el(
                      "tr",
                      {},
                      el("td", {}, n.name),
                      el("td.num", {}, fmtBytes(n.rx_bytes)),
                      el("td.num", {}, fmtBytes(n.tx_bytes)),
                      el("td.num", {}, fmtRate(r[0])),
                      el("td.num", {}, fmtRate(r[1])),
                      el("td.num", {}, fmtInt(n.rx_errors + n.tx_errors)),
                      el("td.num", {}, fmtInt(n.rx_dropped + n.tx_dropped)),
                    );
                  }),
                )
              : el("p.muted", {}, "No network namespace of its own found."),
        ),
      );

      procs.replaceChildren(
        (processesForbidden
          ? section(
              "Processes",
              el("p.muted", {}, "Shown only to clients on this machine (loopback) or authenticated ones."),
            )
          : processCard(c.processes, c.processes ? procCpu(tArrived, c.processes.processes) : new Map())) ?? "",
      );

      // A pod lists its containers.
      if (c.kind === "pod") {
        const all = await api("/api/v1/containers");
        const members = all.filter((m) => m.kind === "container" && m.cgroup.startsWith(`${c.cgroup}/`));
        pod.replaceChildren(
          section(
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
          ),
        );
      }
      main.querySelector(".view").dataset.loaded = "true";
    },
  };
}

function notFound(main) {
  main.append(
    el(
      "div.view",
      { dataset: { view: "not-found", loaded: "true" } },
      el("h1", {}, "Not found"),
      el("p", {}, "No such page. ", el("a", { href: "#/" }, "Back to the node overview"), "."),
    ),
  );
  return { refresh: async () => {} };
}

// ---- Router and keyboard -------------------------------------------------------------------

function route() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  const parts = path.split("/").filter(Boolean);
  const main = document.getElementById("main");
  main.replaceChildren();
  let view;
  if (parts.length === 0) view = overview(main);
  else if (parts[0] === "containers" && parts.length === 1)
    view = containerList(main, new URLSearchParams(query));
  else if (parts[0] === "containers")
    view = containerDetail(main, decodeURIComponent(parts.slice(1).join("/")));
  else view = notFound(main);
  state.view = view;
  for (const a of document.querySelectorAll("header nav a")) {
    const current =
      (a.getAttribute("href") === "#/" && parts.length === 0) ||
      (a.getAttribute("href") === "#/containers" && parts[0] === "containers");
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  window.scrollTo(0, 0);
  main.focus({ preventScroll: true });
  poll();
}

/** Moves keyboard focus `step` rows up or down the current table of links. */
function moveFocus(step) {
  const links = [...document.querySelectorAll("#main a.row-link")];
  if (!links.length) return;
  const at = links.indexOf(document.activeElement);
  const next =
    at < 0 ? (step > 0 ? 0 : links.length - 1) : Math.min(links.length - 1, Math.max(0, at + step));
  links[next].focus();
  links[next].scrollIntoView({ block: "nearest" });
}

function togglePause(force) {
  state.paused = force ?? !state.paused;
  const button = document.getElementById("pause");
  button.textContent = state.paused ? "Resume" : "Pause";
  button.setAttribute("aria-pressed", String(state.paused));
  if (state.paused) setStatus("paused", "paused");
  else poll();
}

function onKey(ev) {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const typing = ev.target.closest && ev.target.closest("input, select, textarea");
  if (typing) return;
  const help = document.getElementById("help");
  const go = (hash) => {
    location.hash = hash;
    ev.preventDefault();
  };
  switch (ev.key) {
    case "/": {
      const filter = document.getElementById("filter");
      if (filter) {
        filter.focus();
        filter.select();
        ev.preventDefault();
      } else {
        go("#/containers");
      }
      break;
    }
    case "j":
    case "ArrowDown":
      if (document.querySelector("#main a.row-link")) {
        moveFocus(1);
        ev.preventDefault();
      }
      break;
    case "k":
    case "ArrowUp":
      if (document.querySelector("#main a.row-link")) {
        moveFocus(-1);
        ev.preventDefault();
      }
      break;
    case "g":
    case "1":
      go("#/");
      break;
    case "c":
    case "2":
      go("#/containers");
      break;
    case "Escape":
    case "u":
      if (location.hash.startsWith("#/containers/")) {
        if (state.moves > 0) history.back();
        else location.hash = "#/containers";
        ev.preventDefault();
      }
      break;
    case "p":
      togglePause();
      break;
    case "?":
      if (help.open) help.close();
      else help.showModal();
      break;
    default:
  }
}

function start() {
  document.getElementById("pause").addEventListener("click", () => togglePause());
  document
    .getElementById("help-button")
    .addEventListener("click", () => document.getElementById("help").showModal());
  document
    .getElementById("help-close")
    .addEventListener("click", () => document.getElementById("help").close());
  window.addEventListener("hashchange", () => {
    state.moves++;
    route();
  });
  document.addEventListener("keydown", onKey);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) poll();
  });
  // Without a token file /login redirects to the UI; not followed, that answer is not ok.
  fetch("/login", { method: "HEAD", redirect: "manual", cache: "no-store" })
    .then((res) => {
      state.login = res.ok;
      document.getElementById("logout").hidden = !res.ok;
    })
    .catch(() => {});
  route();
}

start();
