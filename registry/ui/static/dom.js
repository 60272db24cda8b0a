// Building pages from DOM nodes: API text always goes in as text nodes, never as markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function fill(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "style") Object.assign(el.style, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An HTML element: h("a", {href: "#/x"}, "text", otherNode). */
export const h = (tag, attrs, ...children) => fill(document.createElement(tag), attrs, children);

/** An SVG element. */
export const s = (tag, attrs, ...children) => fill(document.createElementNS(SVG_NS, tag), attrs, children);

/** A number as the API gave it, grouped for reading (toLocaleString only; floats keep 6 decimals). */
export function num(value) {
  if (typeof value !== "number") return value === null || value === undefined ? "—" : String(value);
  return value.toLocaleString(undefined, { maximumFractionDigits: 6 });
}

/** An API time ("2026-11-23T10:00:00.123456Z") cut to the second for reading; the full text stays in a title. */
export function time(text) {
  if (!text) return h("span", {}, "—");
  const short = String(text).replace("T", " ").replace(/\.\d+/, "");
  return h("time", { datetime: text, title: text }, short);
}

/** A snapshot id cut to 12 characters, the full id in a title. */
export const shortId = (id) => h("code", { title: id }, id ? id.slice(0, 12) : "—");

export const link = (href, ...children) => h("a", { href }, ...children);

const GATE_WORDS = {
  passed: "passed", failed: "failed", waived: "waived", never_evaluated: "not evaluated",
  stale: "stale", no_policy: "no policy",
};

/** A gate state as a coloured badge with a word (colour is never the only signal). */
export const gateBadge = (state) =>
  h("span", { class: `badge gate-${state}`, "data-state": state }, GATE_WORDS[state] || state);

/** A table: headers and rows of cells (nodes or text). */
export function table(headers, rows, attrs = {}) {
  return h("table", attrs,
    h("thead", {}, h("tr", {}, headers.map((title) => h("th", { scope: "col" }, title)))),
    h("tbody", {}, rows.map((cells) => (cells instanceof Node ? cells : h("tr", {}, cells.map((c) =>
      c instanceof Node && c.tagName === "TD" ? c : h("td", {}, c)))))));
}

/** A server message without its command-line advice ("; set one with `registry policy set ...`"):
 * the console's readers act through its pages, not a shell. */
export function plain(message) {
  const text = String(message ?? "");
  const kept = text.split(/;\s+/).filter((part) => !/`registry\b|\bregistry [a-z]+ [a-z-]+/.test(part));
  const joined = (kept.length ? kept : [text.split(/;\s+/)[0]]).join("; ");
  return joined.replace(/\s*\(`registry[^)]*\)/g, "").replace(/`registry[^`]*`/g, "the registry's tools");
}

/** The console's own labels for the parameters a hint may name (the forms' field labels). */
const HINT_LABELS = {
  reason: "Reason", expires: "Expires", strategy: "Strategy", prefer: "Prefer", depth: "Depth", column: "Label column",
};

/** An error's hint in the console's words: the field or setting to use, the accepted values, or the
 * command an administrator runs on the registry host (plain text, never markup). */
export function hintText(hint) {
  if (!hint || typeof hint.name !== "string") return "";
  const label = HINT_LABELS[hint.name] || hint.name.replace(/_/g, " ");
  const value = typeof hint.value === "string" && hint.value ? hint.value : "";
  if (hint.kind === "option") return value ? `use "${label}" (e.g. ${value})` : `use "${label}"`;
  if (hint.kind === "field") return value ? `fill the "${label}" field (${value})` : `fill the "${label}" field`;
  if (hint.kind === "value") return value ? `"${label}" accepts ${value}` : `check "${label}"`;
  if (hint.kind === "command") return `an administrator can run "${hint.name}" on the registry host`;
  return "";
}

/** An error box (role=alert so screen readers announce it); its hint, if any, on a line of its own. */
export const errorBox = (err) => {
  const text = err && err.code ? `${plain(err.message)} (${err.code})` : plain(err);
  const hint = err && err.hint ? hintText(err.hint) : "";
  const box = h("p", { class: "error", role: "alert" }, text);
  if (hint) box.append(h("br"), h("span", { class: "hint" }, `Hint: ${hint}`));
  return box;
};

/** What a page shows when there is nothing (yet): no snapshot, no gate, nothing changed. */
export const emptyState = (...children) => h("p", { class: "empty", role: "status" }, ...children);

export function labelled(id, text, input) {
  input.id = id;
  return h("span", { class: "field" }, h("label", { for: id }, text), input);
}
