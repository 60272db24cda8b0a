// Charts made of plain HTML and SVG: the change-matrix heat map, a diverging bar chart, inline bars.

import { h, num, s } from "./dom.js";

const MAX_CLASSES = 60;

/** The change matrix (matrix[from][to] = rows) as a table whose cells are shaded by count. */
export function heatMap(matrix) {
  const weight = {};
  for (const [from, row] of Object.entries(matrix)) {
    for (const [to, count] of Object.entries(row)) {
      if (from !== to) {
        weight[from] = (weight[from] || 0) + count;
        weight[to] = (weight[to] || 0) + count;
      }
      weight[from] = weight[from] || 0;
      weight[to] = weight[to] || 0;
    }
  }
  let classes = Object.keys(weight).sort();
  const hidden = classes.length - MAX_CLASSES;
  if (hidden > 0) {
    const keep = new Set(classes.sort((x, y) => weight[y] - weight[x]).slice(0, MAX_CLASSES));
    classes = [...keep].sort();
  }
  let maxOff = 0;
  let maxDiag = 0;
  for (const [from, row] of Object.entries(matrix)) {
    for (const [to, count] of Object.entries(row)) {
      if (from === to) maxDiag = Math.max(maxDiag, count);
      else maxOff = Math.max(maxOff, count);
    }
  }
  const shade = (count, max) => (max > 0 ? 0.12 + 0.88 * (Math.log1p(count) / Math.log1p(max)) : 0);
  const cell = (from, to) => {
    const count = (matrix[from] || {})[to];
    const attrs = { "data-from": from, "data-to": to, class: from === to ? "diag" : "off" };
    if (count === undefined) return h("td", { ...attrs, class: `${attrs.class} zero`, "aria-label": "0" });
    const alpha = shade(count, from === to ? maxDiag : maxOff);
    const dark = alpha > 0.55;
    const color = from === to ? `rgba(90, 110, 140, ${alpha})` : `rgba(200, 60, 20, ${alpha})`;
    return h("td", { ...attrs, class: `${attrs.class}${dark ? " dark" : ""}`, style: { backgroundColor: color },
      title: `${from} → ${to}: ${num(count)}` }, num(count));
  };
  return h("div", { class: "scroll" },
    h("p", { class: "note" }, "Rows in both snapshots by label in A (row) and in B (column); off-diagonal cells are ",
      "relabels.", hidden > 0 ? ` Showing the ${MAX_CLASSES} classes with the most changes; ${num(hidden)} more not shown.`
        : ""),
    h("table", { class: classes.length > 10 ? "heatmap many" : "heatmap", id: "matrix" },
      h("caption", { class: "sr-only" }, "Change matrix"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "A ↓ / B →"),
        classes.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, classes.map((from) => h("tr", {}, h("th", { scope: "row" }, from),
        classes.map((to) => cell(from, to)))))));
}

/** Net change per class as horizontal bars around zero (SVG), each with its number. */
export function netChangeChart(netChange) {
  const entries = Object.entries(netChange);
  const rowHeight = 24;
  const labelWidth = 160;
  const half = 220;
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
        name.length > 22 ? `${name.slice(0, 21)}…` : name),
      s("rect", { x: value < 0 ? zero - length : zero, y: y + 4, width: Math.max(length, value === 0 ? 0 : 1),
        height: rowHeight - 8 }),
      s("text", { x: labelWidth + 2 * half + 8, y: y + 16, class: "value" }, (value > 0 ? "+" : "") + num(value)));
  });
  const height = Math.max(rowHeight, entries.length * rowHeight);
  return s("svg", { class: "bars", id: "net-change", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `Net change per class: ${entries.map(([n, v]) => `${n} ${num(v)}`).join(", ")}` },
  s("line", { x1: zero, y1: 0, x2: zero, y2: height, class: "axis" }), ...bars);
}

/** A two-column table with a proportional bar behind each count. */
export function countTable(id, title, counts) {
  const entries = Object.entries(counts);
  const max = Math.max(1, ...entries.map(([, v]) => v));
  return h("table", { class: "grid counts", id },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, title), h("th", { scope: "col" }, "Relabeled rows"))),
    h("tbody", {}, entries.map(([name, count]) => h("tr", {},
      h("th", { scope: "row" }, name),
      h("td", { class: "num barcell" }, h("span", { class: "fill", style: { width: `${(100 * count) / max}%` } }),
        h("span", { class: "n" }, num(count)))))));
}
