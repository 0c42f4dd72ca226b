// ESLint's configuration for the web UI: browser ES modules, the recommended rules, plus a
// few that catch what a hand-built DOM invites (shadowed names, loose equality but `== null`).
"use strict";

const js = require("@eslint/js");

const browser = Object.fromEntries(
  [
    "window",
    "document",
    "location",
    "history",
    "fetch",
    "performance",
    "setTimeout",
    "clearTimeout",
    "requestAnimationFrame",
    "getComputedStyle",
    "Node",
    "URLSearchParams",
    "ResizeObserver",
    "Intl",
  ].map((name) => [name, "readonly"]),
);

module.exports = [
  js.configs.recommended,
  {
    files: ["src/export/ui/**/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: browser,
    },
    rules: {
      eqeqeq: ["error", "always", { null: "ignore" }],
      "no-shadow": "error",
      "no-var": "error",
      "prefer-const": "error",
      "no-unused-vars": ["error", { args: "after-used", caughtErrors: "none" }],
      "no-implicit-globals": "error",
    },
  },
];
