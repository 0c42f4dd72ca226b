// chart.js: a small self-contained SVG line chart for the UI's live time series (no library,
// no network). One chart = one <figure>; update() redraws it from plain [t_ms, value] arrays.

const SVG = "http://www.w3.org/2000/svg";
const HEIGHT = 170;
const PAD = { top: 10, right: 12, bottom: 22, left: 62 };
// Shortest time span a chart shows, so a young series grows in from the right.
const MIN_WINDOW_MS = 60_000;

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

// Tick step of 1, 2 or 5 times a power of ten, close to span/count.
function niceStep(span, count) {
  const raw = span / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
}

// Ticks from 0 to at least max; byte axes step in powers of 1024 so labels come out round,
// and count axes (bytes, tasks) never step by less than one.
function ticks(max, binary, integer) {
  if (!(max > 0)) max = binary ? 1024 : 1;
  let unit = 1;
  if (binary) while (max / unit >= 1024) unit *= 1024;
  let step = niceStep(max / unit, 4) * unit;
  if (binary || integer) step = Math.max(step, 1);
  const top = Math.ceil(max / step - 1e-9) * step;
  const out = [];
  for (let v = 0; v <= top + step / 2; v += step) out.push(v);
  return out;
}

function relTime(ms) {
  const s = Math.round(ms / 1000);
  if (s === 0) return "now";
  return s % 60 === 0 ? `-${s / 60}m` : `-${s}s`;
}

/**
 * Creates a chart inside `parent`.
 * opts: { id, title, format(v) -> label, binary (byte axis), integer (count axis),
 *         series: [{ label, cls (colour class s1..s5), dash }] }
 * Returns { el, update({ series: [[t_ms, v|null], ...][], limit: {value, label}|null }) }.
 * The figure carries data-chart=id, data-points (points of the longest series) and data-last
 * (time of the newest point, ms since the Unix epoch).
 */
export function lineChart(parent, opts) {
  const fig = document.createElement("figure");
  fig.className = "chart";
  fig.dataset.chart = opts.id;
  fig.dataset.points = "0";
  const caption = document.createElement("figcaption");
  const title = document.createElement("span");
  title.className = "chart-title";
  title.textContent = opts.title;
  const legend = document.createElement("span");
  legend.className = "legend";
  caption.append(title, legend);
  const plot = document.createElement("div");
  plot.className = "plot";
  plot.setAttribute("role", "img");
  const tip = document.createElement("div");
  tip.className = "tip";
  tip.hidden = true;
  plot.append(tip);
  fig.append(caption, plot);
  parent.append(fig);

  let last = { series: [], limit: null };
  let geom = null;
  // Where the pointer rests over the plot (client x), so a redraw keeps the cursor there.
  let pointerX = null;

  function draw() {
    const { series, limit } = last;
    const width = Math.max(plot.clientWidth, 200);
    const w = width - PAD.left - PAD.right;
    const h = HEIGHT - PAD.top - PAD.bottom;
    const all = series.flat().filter((p) => p[1] != null);
    const tEnd = all.length ? Math.max(...all.map((p) => p[0])) : Date.now();
    const tFirst = all.length ? Math.min(...all.map((p) => p[0])) : tEnd;
    const span = Math.max(tEnd - tFirst, MIN_WINDOW_MS);
    const tStart = tEnd - span;
    const dataMax = all.length ? Math.max(...all.map((p) => p[1])) : 0;
    // The limit line joins the scale only when the data comes within a tenth of it;
    // otherwise it would flatten the series into the floor (the legend still names it).
    const showLimit = limit && limit.value > 0 && dataMax >= limit.value / 10;
    const yTicks = ticks(Math.max(dataMax, showLimit ? limit.value : 0), opts.binary, opts.integer);
    const yMax = yTicks[yTicks.length - 1];
    const x = (t) => PAD.left + ((t - tStart) / span) * w;
    const y = (v) => PAD.top + h - (v / yMax) * h;
    geom = { x, tStart, span, w };

    const root = svg("svg", {
      width: String(width),
      height: String(HEIGHT),
      viewBox: `0 0 ${width} ${HEIGHT}`,
      "aria-hidden": "true",
    });
    for (const v of yTicks) {
      root.append(svg("line", { class: "grid", x1: PAD.left, x2: PAD.left + w, y1: y(v), y2: y(v) }));
      const label = svg("text", { class: "axis", x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end" });
      label.textContent = opts.format(v);
      root.append(label);
    }
    const stepS = span > 180_000 ? 60 : span > 90_000 ? 30 : 15;
    for (let ago = 0; ago <= span; ago += stepS * 1000) {
      const label = svg("text", {
        class: "axis",
        x: x(tEnd - ago),
        y: HEIGHT - 6,
        "text-anchor": ago === 0 ? "end" : "middle",
      });
      label.textContent = relTime(ago);
      root.append(label);
    }
    if (showLimit) {
      root.append(
        svg("line", {
          class: "limit",
          x1: PAD.left,
          x2: PAD.left + w,
          y1: y(limit.value),
          y2: y(limit.value),
        }),
      );
    }
    series.forEach((points, i) => {
      const spec = opts.series[i];
      let d = "";
      let pen = false;
      for (const [t, v] of points) {
        if (v == null || t < tStart) {
          pen = false;
          continue;
        }
        d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
        pen = true;
      }
      if (!d) return;
      // A lone point has no segment to stroke: draw it as a dot. Gaps can leave several in
      // one series ("M1,2M3,4"), so look at each run, not at the whole path.
      for (const run of d.split("M").slice(1)) {
        if (run.includes("L")) continue;
        const [px, py] = run.split(",");
        root.append(svg("circle", { class: `dot ${spec.cls}`, cx: px, cy: py, r: 2.5 }));
      }
      root.append(svg("path", { class: `line ${spec.cls}${spec.dash ? " dashed" : ""}`, d }));
    });
    root.append(
      svg("line", { class: "cursor", x1: 0, x2: 0, y1: PAD.top, y2: PAD.top + h, visibility: "hidden" }),
    );
    plot.querySelector("svg")?.remove();
    plot.prepend(root);
    if (pointerX != null) showTip({ clientX: pointerX });
  }

  function drawLegend() {
    legend.replaceChildren();
    last.series.forEach((points, i) => {
      const spec = opts.series[i];
      const lastPoint = [...points].reverse().find((p) => p[1] != null);
      const item = document.createElement("span");
      item.className = "key";
      const swatch = document.createElement("i");
      swatch.className = `swatch ${spec.cls}${spec.dash ? " dashed" : ""}`;
      item.append(swatch, `${spec.label} ${lastPoint ? opts.format(lastPoint[1]) : "–"}`);
      legend.append(item);
    });
    if (last.limit && last.limit.value > 0) {
      const item = document.createElement("span");
      item.className = "key";
      const swatch = document.createElement("i");
      swatch.className = "swatch limit";
      item.append(swatch, `${last.limit.label || "limit"} ${opts.format(last.limit.value)}`);
      legend.append(item);
    }
  }

  // Hover or touch: a cursor line and the values of the nearest sample.
  function showTip(ev) {
    pointerX = ev.clientX;
    if (!geom || !last.series.length) return;
    const box = plot.getBoundingClientRect();
    const t = geom.tStart + ((ev.clientX - box.left - PAD.left) / geom.w) * geom.span;
    const base = last.series.reduce((a, b) => (b.length > a.length ? b : a), []);
    if (!base.length) return;
    let best = base[0][0];
    for (const p of base) if (Math.abs(p[0] - t) < Math.abs(best - t)) best = p[0];
    const cursor = plot.querySelector(".cursor");
    if (cursor) {
      cursor.setAttribute("x1", geom.x(best));
      cursor.setAttribute("x2", geom.x(best));
      cursor.setAttribute("visibility", "visible");
    }
    const lines = [new Date(best).toLocaleTimeString()];
    last.series.forEach((points, i) => {
      const p = points.find((q) => q[0] === best);
      if (p && p[1] != null) lines.push(`${opts.series[i].label}: ${opts.format(p[1])}`);
    });
    tip.textContent = lines.join("\n");
    tip.hidden = false;
    const left = Math.min(Math.max(geom.x(best) + 8, 0), box.width - tip.offsetWidth - 4);
    tip.style.left = `${left}px`;
  }
  function hideTip() {
    pointerX = null;
    tip.hidden = true;
    plot.querySelector(".cursor")?.setAttribute("visibility", "hidden");
  }
  plot.addEventListener("pointermove", showTip);
  plot.addEventListener("pointerleave", hideTip);

  let width = 0;
  new ResizeObserver(() => {
    if (plot.clientWidth !== width) {
      width = plot.clientWidth;
      draw();
    }
  }).observe(plot);

  return {
    el: fig,
    update(data) {
      last = { series: data.series, limit: data.limit || null };
      fig.dataset.points = String(Math.max(0, ...data.series.map((s) => s.length)));
      fig.dataset.last = String(Math.max(0, ...data.series.map((s) => (s.length ? s[s.length - 1][0] : 0))));
      drawLegend();
      plot.setAttribute(
        "aria-label",
        `${opts.title}: ${[...legend.children].map((k) => k.textContent).join(", ")}`,
      );
      draw();
    },
  };
}
