// app.js: cgscope's debugging UI. A hash router over three pages (node overview, container
// list, container detail, each a module of its own) that poll the JSON API once per sampler
// interval; the server computes every figure, the pages only draw.

import { containerDetail } from "./detail.js";
import { el } from "./dom.js";
import { containerList } from "./list.js";
import { poll, setStatus, state } from "./live.js";
import { overview } from "./overview.js";

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
