// The snapshot graph beside the history table: one lane per line of descent, drawn row by row in SVG.

import { s } from "./dom.js";

const LANE = 14;
const ROW = 34;

/** For snapshots newest first: each row's lane and the lines entering and leaving it. */
export function layout(snapshots) {
  let lanes = [];
  const rows = [];
  for (const snap of snapshots) {
    let col = lanes.indexOf(snap.id);
    const before = lanes.slice();  // the lines coming down from newer rows
    if (col < 0) {  // no newer snapshot descends from this one: a new line starts here
      col = lanes.indexOf(null);
      if (col < 0) col = lanes.length;
      lanes[col] = snap.id;
    }
    const after = lanes.map((id) => (id === snap.id ? null : id));
    const targets = [];
    snap.parents.forEach((parent, i) => {
      let lane = after.indexOf(parent);
      if (lane < 0) {
        lane = i === 0 && after[col] === null ? col : after.indexOf(null);
        if (lane < 0) lane = after.length;
        after[lane] = parent;
      }
      targets.push(lane);
    });
    while (after.length && after[after.length - 1] === null) after.pop();
    rows.push({ col, before, after, targets });
    lanes = after;
  }
  const width = Math.max(1, ...rows.map((r) => Math.max(r.before.length, r.after.length)));
  return { rows, width };
}

const x = (lane) => LANE / 2 + lane * LANE;

/** One row's cell of the graph. */
export function rowGraph(row, width, snap) {
  const mid = ROW / 2;
  const parts = [];
  row.before.forEach((id, lane) => {
    if (id === null) return;
    if (id === snap.id) parts.push(s("line", { x1: x(lane), y1: 0, x2: x(row.col), y2: mid }));
    else if (row.after[lane] === id) parts.push(s("line", { x1: x(lane), y1: 0, x2: x(lane), y2: ROW }));
  });
  for (const lane of row.targets) parts.push(s("line", { x1: x(row.col), y1: mid, x2: x(lane), y2: ROW }));
  const head = snap.branches.length > 0;
  parts.push(s("circle", { cx: x(row.col), cy: mid, r: head ? 5.5 : 4, class: head ? "node head" : "node" }));
  return s("svg", { class: "lanes", width: width * LANE, height: ROW, viewBox: `0 0 ${width * LANE} ${ROW}`,
    "aria-hidden": "true" }, ...parts);
}
