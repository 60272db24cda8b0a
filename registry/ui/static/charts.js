// Charts made of plain HTML and SVG: the change-matrix heat map, a diverging bar chart, inline bars.

import { h, num, s } from "./dom.js";

/** Classes drawn one by one in the matrix and the bars; the rest are summed into "other". */
export const TOP_CLASSES = 12;
export const OTHER = "other";

/** The classes that moved the most (relabels in or out, then size), at most ``top``; the rest are "other". */
export function topClasses(matrix, netChange, top = TOP_CLASSES) {
  const weight = new Map();
  const add = (name, w) => weight.set(name, (weight.get(name) || 0) + w);
  for (const [from, row] of Object.entries(matrix)) {
    for (const [to, count] of Object.entries(row)) {
      if (from !== to) { add(from, count * 1e6); add(to, count * 1e6); } else add(from, count);
    }
  }
  for (const [name, value] of Object.entries(netChange || {})) add(name, Math.abs(value));
  const ranked = [...weight.keys()].sort((x, y) => weight.get(y) - weight.get(x) || x.localeCompare(y));
  const kept = ranked.length > top ? ranked.slice(0, top) : ranked;
  return { kept: new Set(kept), hidden: ranked.length - kept.length };
}

/** ``matrix`` with every class outside ``kept`` folded into "other" (rows and columns). */
export function foldMatrix(matrix, kept) {
  const fold = (name) => (kept.has(name) ? name : OTHER);
  const out = {};
  for (const [from, row] of Object.entries(matrix)) {
    for (const [to, count] of Object.entries(row)) {
      const f = fold(from);
      const t = fold(to);
      out[f] = out[f] || {};
      out[f][t] = (out[f][t] || 0) + count;
    }
  }
  return out;
}

/** The change matrix (matrix[from][to] = rows) as a table whose cells are shaded by count; the
 * classes that moved most are drawn, the rest summed into an "other" row and column. */
export function heatMap(matrix, netChange) {
  const { kept, hidden } = topClasses(matrix, netChange);
  const folded = hidden > 0 ? foldMatrix(matrix, kept) : matrix;
  const classes = [...kept].sort();
  if (hidden > 0) classes.push(OTHER);
  let maxOff = 0;
  let maxDiag = 0;
  for (const [from, row] of Object.entries(folded)) {
    for (const [to, count] of Object.entries(row)) {
      if (from === to) maxDiag = Math.max(maxDiag, count);
      else maxOff = Math.max(maxOff, count);
    }
  }
  const shade = (count, max) => (max > 0 ? 0.12 + 0.88 * (Math.log1p(count) / Math.log1p(max)) : 0);
  const cell = (from, to) => {
    const count = (folded[from] || {})[to];
    const diag = from === to;  // "other" to "other" holds unchanged rows too: shaded as the diagonal
    const attrs = { "data-from": from, "data-to": to, class: diag ? "diag" : "off" };
    if (count === undefined) return h("td", { ...attrs, class: `${attrs.class} zero`, "aria-label": "0" });
    const alpha = shade(count, diag ? maxDiag : maxOff);
    const dark = alpha > 0.55;
    const color = diag ? `rgba(90, 110, 140, ${alpha})` : `rgba(200, 60, 20, ${alpha})`;
    return h("td", { ...attrs, class: `${attrs.class}${dark ? " dark" : ""}`, style: { backgroundColor: color },
      title: `${from} → ${to}: ${num(count)}` }, num(count));
  };
  const head = (c) => h("th", { scope: "col", class: c === OTHER ? "other" : null, title: c }, c);
  return h("div", { class: "scroll" },
    h("p", { class: "note", id: "matrix-note" }, "Rows in both snapshots by label in A (row) and in B (column); ",
      "off-diagonal cells are relabels.",
      hidden > 0 ? ` The ${num(kept.size)} classes that moved most are shown; the other ${num(hidden)} are summed in “${OTHER}”.`
        : ""),
    h("table", { class: classes.length > 10 ? "heatmap many" : "heatmap", id: "matrix" },
      h("caption", { class: "sr-only" }, "Change matrix"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "A ↓ / B →"), classes.map(head))),
      h("tbody", {}, classes.map((from) => h("tr", {}, h("th", { scope: "row", class: from === OTHER ? "other" : null,
        title: from }, from), classes.map((to) => cell(from, to)))))));
}

/** Net change per class as horizontal bars around zero (SVG), each with its number: the classes
 * that changed most, the rest summed into one "other (N classes)" bar. */
export function netChangeChart(netChange, top = TOP_CLASSES) {
  let entries = Object.entries(netChange).sort((x, y) => Math.abs(y[1]) - Math.abs(x[1]) || x[0].localeCompare(y[0]));
  if (entries.length > top + 1) {
    const rest = entries.slice(top);
    entries = [...entries.slice(0, top), [`${OTHER} (${num(rest.length)} classes)`,
      rest.reduce((sum, [, v]) => sum + v, 0)]];
  }
  const rowHeight = 24;
  const labelWidth = 170;
  const half = 180;
  const valueWidth = 90;
  const width = labelWidth + 2 * half + valueWidth;
  const max = Math.max(1, ...entries.map(([, v]) => Math.abs(v)));
  const zero = labelWidth + half;
  const bars = entries.map(([name, value], i) => {
    const y = i * rowHeight;
    const length = (Math.abs(value) / max) * (half - 4);
    return s("g", { class: value < 0 ? "bar neg" : "bar pos", "data-class": name },
      s("title", {}, `${name}: ${num(value)}`),
      s("text", { x: labelWidth - 8, y: y + 16, "text-anchor": "end", class: "label" },
        name.length > 24 ? `${name.slice(0, 23)}…` : name),
      s("rect", { x: value < 0 ? zero - length : zero, y: y + 4, width: Math.max(length, value === 0 ? 0 : 1),
        height: rowHeight - 8 }),
      s("text", { x: labelWidth + 2 * half + 8, y: y + 16, class: "value" }, (value > 0 ? "+" : "") + num(value)));
  });
  const height = Math.max(rowHeight, entries.length * rowHeight);
  return s("svg", { class: "bars", id: "net-change", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `Net change per class: ${entries.map(([n, v]) => `${n} ${num(v)}`).join(", ")}` },
  s("line", { x1: zero, y1: 0, x2: zero, y2: height, class: "axis" }), ...bars);
}

/** The longest count tables draw this many rows; the rest are summed. */
const TOP_ROWS = 15;

/** A two-column table with a proportional bar behind each count. */
export function countTable(id, title, counts) {
  let entries = Object.entries(counts).sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]));
  if (entries.length > TOP_ROWS + 1) {
    const rest = entries.slice(TOP_ROWS);
    entries = [...entries.slice(0, TOP_ROWS), [`${OTHER} (${num(rest.length)})`, rest.reduce((sum, [, v]) => sum + v, 0)]];
  }
  const max = Math.max(1, ...entries.map(([, v]) => v));
  return h("table", { class: "grid counts", id },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, title), h("th", { scope: "col" }, "Relabeled rows"))),
    h("tbody", {}, entries.map(([name, count]) => h("tr", {},
      h("th", { scope: "row" }, name),
      h("td", { class: "num barcell" }, h("span", { class: "fill", style: { width: `${(100 * count) / max}%` } }),
        h("span", { class: "n" }, num(count)))))));
}
