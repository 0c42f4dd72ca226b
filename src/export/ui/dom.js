// dom.js: building blocks of every page of the UI: elements, number formats, cards, tables.
// Nothing here fetches or keeps state. The DOM is built node by node, never from HTML
// strings, so names and labels cannot inject markup.

/** el("a.link", {href}, child, ...): an element with classes, attributes, listeners, children. */
export function el(spec, attrs, ...children) {
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

export function fmtBytes(n) {
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
export const fmtRate = (n) => (n == null ? "–" : `${fmtBytes(n)}/s`);
export const fmtNum = (v) =>
  v == null ? "–" : Math.abs(v) >= 100 ? String(Math.round(v)) : String(Number(v.toPrecision(3)));
export const fmtCores = (v) => (v == null ? "–" : v.toFixed(2));
export const fmtPct = (v) => (v == null ? "–" : `${fmtNum(v)}%`);
export const fmtInt = (v) => (v == null ? "–" : Number(v).toLocaleString("en-US"));
export const fmtMicros = (us) =>
  us == null
    ? "–"
    : us < 1000
      ? `${Math.round(us)} µs`
      : us < 1e6
        ? `${fmtNum(us / 1000)} ms`
        : `${fmtNum(us / 1e6)} s`;

export function fmtAgo(unixMs) {
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

export const shortId = (id) => (id ? id.slice(0, 12) : null);
export const enc = encodeURIComponent;

/** The key a container is addressed by in links and API calls: its id, else its cgroup. */
export const keyOf = (c) => c.id || c.cgroup;
export const linkTo = (c) => `#/containers/${enc(keyOf(c))}`;

/** The name a cgroup is shown by: the one the API gives (`display_name`, a model rule). */
export const displayName = (c) => c.display_name;

/** CPU limit in cores (quota / period), or null when unlimited. */
export function cpuLimit(stats) {
  const cpu = stats && stats.cpu;
  return cpu && cpu.quota_us && cpu.period_us ? cpu.quota_us / cpu.period_us : null;
}

export function bar(fraction, label) {
  const fill = el("i");
  fill.style.width = `${Math.min(100, Math.max(0, fraction * 100)).toFixed(1)}%`;
  if (fraction >= 0.9) fill.className = "hot";
  return el("span.bar", { title: label }, fill);
}

export function tile(label, value, sub, fraction) {
  return el(
    "div.tile",
    {},
    el("div.tile-label", {}, label),
    el("div.tile-value", {}, value),
    sub ? el("div.tile-sub", {}, sub) : null,
    fraction != null ? bar(fraction, sub || "") : null,
  );
}

export function defs(pairs) {
  const rows = pairs.filter(([, v]) => v != null && v !== "");
  if (!rows.length) return el("p.muted", {}, "Nothing reported.");
  return el(
    "dl.defs",
    {},
    rows.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]),
  );
}

export function section(title, ...body) {
  return el("section.card", {}, el("h2", {}, title), ...body);
}

export function table(head, rows, cls) {
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
