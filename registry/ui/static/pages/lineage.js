// Lineage: upstream sources and downstream consumers of one snapshot, as boxes and arrows by layer.

import { api, seg } from "../api.js";
import { h, labelled, link, s, table, time } from "../dom.js";

const BOX_W = 230;
const BOX_H = 46;
const GAP_X = 90;
const GAP_Y = 18;

/** When a UUIDv7 run id was made (its first 48 bits are Unix milliseconds), else null. */
export function runTime(id) {
  const hex = String(id || "").replaceAll("-", "");
  if (!/^[0-9a-f]{32}$/i.test(hex) || hex[12] !== "7") return null;
  return new Date(parseInt(hex.slice(0, 12), 16)).toISOString().replace("T", " ").replace(/\.\d+Z$/, "");
}

/** A run id as people tell runs apart: UUIDv7 ids of one day share their first characters (the time),
 * so show the random tail, with the time the id carries. */
export function runName(id) {
  const when = runTime(id);
  const tail = String(id).slice(-8);
  return when ? `…${tail} · ${when}` : String(id).slice(0, 8);
}

/** A node key with ids cut short (snapshot ids to 12 characters, run ids to their distinguishing tail). */
const shortKey = (key) => key.replace(/@([0-9a-f]{12})[0-9a-f]{52}$/, "@$1")
  .replace(/#([^#]+)$/, (_m, run) => `#${runName(run)}`);

function nodeLabel(node) {
  if (node.kind === "snapshot") return `${node.name}@${node.version.slice(0, 12)}`;
  if (node.kind === "run") return `${node.name} run …${String(node.version).slice(-8)}`;
  return `${node.namespace}:${node.name}`;
}

/** Layer of each node: 0 the root, negative upstream, positive downstream (breadth first from the root). */
function layers(graph) {
  const layer = new Map([[graph.root, 0]]);
  for (const [sign, from, to] of [[-1, "dst", "src"], [1, "src", "dst"]]) {
    const queue = [graph.root];
    const seen = new Set(queue);
    while (queue.length) {
      const key = queue.shift();
      for (const edge of graph.edges) {
        if (edge[from] !== key || seen.has(edge[to])) continue;
        seen.add(edge[to]);
        if (!layer.has(edge[to])) layer.set(edge[to], layer.get(key) + sign);
        queue.push(edge[to]);
      }
    }
  }
  return layer;
}

function drawing(graph) {
  const layer = layers(graph);
  const nodes = graph.nodes.filter((n) => layer.has(n.key));
  const columns = [...new Set(nodes.map((n) => layer.get(n.key)))].sort((x, y) => x - y);
  const position = new Map();
  let tallest = 0;
  columns.forEach((col, ci) => {
    const members = nodes.filter((n) => layer.get(n.key) === col).sort((x, y) => x.key.localeCompare(y.key));
    tallest = Math.max(tallest, members.length);
    members.forEach((n, ri) => position.set(n.key, { x: 10 + ci * (BOX_W + GAP_X), y: 10 + ri * (BOX_H + GAP_Y) }));
  });
  const width = 20 + columns.length * BOX_W + (columns.length - 1) * GAP_X;
  const height = 20 + tallest * BOX_H + Math.max(0, tallest - 1) * GAP_Y;
  const arrows = graph.edges.filter((e) => position.has(e.src) && position.has(e.dst)).map((e) => {
    const a = position.get(e.src);
    const b = position.get(e.dst);
    const x1 = a.x + BOX_W;
    const y1 = a.y + BOX_H / 2;
    const x2 = b.x;
    const y2 = b.y + BOX_H / 2;
    const bend = Math.max(30, Math.abs(x2 - x1) / 2);
    return s("path", { class: "edge", d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`,
      "marker-end": "url(#arrow)" }, s("title", {}, `${e.kind}: ${e.src} → ${e.dst}`));
  });
  const boxes = nodes.map((n) => {
    const p = position.get(n.key);
    const label = nodeLabel(n);
    const box = s("g", { class: `lnode kind-${n.kind}${n.key === graph.root ? " root" : ""}`, "data-key": n.key },
      s("title", {}, n.key),
      s("rect", { x: p.x, y: p.y, width: BOX_W, height: BOX_H, rx: n.kind === "run" ? 18 : 4 }),
      s("text", { x: p.x + 10, y: p.y + 17, class: "kind" }, n.kind === "run"
        ? `job run${runTime(n.version) ? ` · ${runTime(n.version)}` : ""}` : n.kind),
      s("text", { x: p.x + 10, y: p.y + 35, class: "name" }, label.length > 32 ? `${label.slice(0, 31)}…` : label));
    if (n.kind !== "snapshot") return box;
    return s("a", { href: `#/lineage/${seg(`${n.name}@${n.version}`)}`, "aria-label": `lineage of ${label}` }, box);
  });
  return s("svg", { class: "lineage", id: "lineage-graph", width, height, viewBox: `0 0 ${width} ${height}`,
    role: "group", "aria-label": "Lineage graph: upstream on the left, downstream on the right" },
  s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 8, markerHeight: 8,
    orient: "auto-start-reverse" }, s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }))),
  ...arrows, ...boxes);
}

export async function lineagePage(view, [ref], query) {
  const direction = query.get("direction") || "both";
  const depth = query.get("depth") || "3";
  const graph = await api("/lineage/graph", { params: { ref, direction, depth } });
  const dirSelect = h("select", {}, ["both", "upstream", "downstream"].map((d) =>
    h("option", { value: d, selected: d === direction }, d)));
  const depthInput = h("input", { type: "number", min: 1, max: 20, value: depth, size: 4 });
  const form = h("form", { class: "toolbar", onsubmit: (event) => {
    event.preventDefault();
    location.hash = `#/lineage/${seg(ref)}?${new URLSearchParams({ direction: dirSelect.value,
      depth: depthInput.value })}`;
  } }, labelled("lineage-direction", "Direction", dirSelect), labelled("lineage-depth", "Depth", depthInput),
  h("button", { type: "submit" }, "Show"));
  const name = ref.split("@")[0];
  view.replaceChildren(
    h("h1", {}, `Lineage of ${graph.root.replace(/@(.{12}).*/, "@$1")}`),
    h("p", {}, link(`#/datasets/${seg(name)}`, `← ${name} history`), " · upstream sources on the left, ",
      "downstream consumers (training jobs, derived datasets) on the right."),
    form,
    graph.edges.length === 0 ? h("p", { class: "muted" }, "No lineage recorded for this snapshot yet.")
      : h("div", { class: "scroll" }, drawing(graph)),
    h("h2", {}, "Edges"),
    h("div", { class: "scroll" }, table(["From", "Edge", "To", "Run", "Recorded"], graph.edges.map((e) => [
      h("span", { title: e.src }, shortKey(e.src)), e.kind, h("span", { title: e.dst }, shortKey(e.dst)),
      e.run_id ? h("code", { title: e.run_id, class: "run-id" }, runName(e.run_id)) : "—", time(e.created_at)]),
    { class: "grid", id: "lineage-edges" })));
}
