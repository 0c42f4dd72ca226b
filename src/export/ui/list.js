// list.js: the container list: filters kept in the address, sortable columns, pods grouped.

import {
  bar,
  cpuLimit,
  displayName,
  el,
  fmtBytes,
  fmtCores,
  keyOf,
  linkTo,
} from "./dom.js";
import { api, learnIntervalFrom, machine, poll, state } from "./live.js";

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

export function containerList(main, params) {
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
