// live.js: the UI's state, its one way to read the JSON API, and the poll that refreshes the
// current page once per sampler interval. It knows no page.

import { enc, fmtNum, keyOf } from "./dom.js";

export const state = {
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


export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function api(path) {
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
export function learnInterval(points) {
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
export function learnIntervalFrom(list) {
  if (state.intervalKnown || !list.length) return;
  const oldest = list.reduce((a, b) => (b.first_seen_unix_ms < a.first_seen_unix_ms ? b : a));
  api(`/api/v1/containers/${enc(keyOf(oldest))}?history=true`)
    .then((c) => learnInterval(c.history))
    .catch(() => {});
}

export function setStatus(kind, text) {
  const node = document.getElementById("status");
  node.className = `status ${kind}`;
  node.textContent = text;
  node.title = text;
}

export async function poll() {
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

export async function machine() {
  if (!state.machine) state.machine = await api("/api/v1/machine");
  return state.machine;
}

