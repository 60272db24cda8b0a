// Label diff: change matrix, net change per class, changes by annotator and guideline, changed rows paged.

import { api, ApiError, seg } from "../api.js";
import { countTable, heatMap, netChangeChart } from "../charts.js";
import { errorBox, h, labelled, link, num, time } from "../dom.js";

const PAGE = 50;

function datasetOf(ref) {
  return ref.split("@")[0];
}

function refForm(a, b, column) {
  const fields = { a: h("input", { type: "text", value: a, required: true, size: 36 }),
    b: h("input", { type: "text", value: b, required: true, size: 36 }),
    column: h("input", { type: "text", value: column, required: true, size: 12 }) };
  return h("form", { class: "toolbar", onsubmit: (event) => {
    event.preventDefault();
    const q = new URLSearchParams({ a: fields.a.value.trim(), b: fields.b.value.trim(),
      column: fields.column.value.trim() });
    location.hash = `#/diff?${q}`;
  } },
  labelled("diff-a", "A", fields.a), labelled("diff-b", "B", fields.b),
  labelled("diff-column", "Label column", fields.column), h("button", { type: "submit" }, "Compare"));
}

function changeRows(name, rows) {
  return rows.map((r) => h("tr", {},
    h("td", {}, link(`#/sample/${seg(name)}/${seg(r.key)}`, r.key)),
    h("td", { class: "before" }, r.from),
    h("td", { class: "after" }, r.to),
    h("td", {}, r.annotator ?? "—"),
    h("td", {}, r.guideline_version ?? "—"),
    h("td", {}, time(r.labeled_at))));
}

function pagedTable(params, name, total, firstRows) {
  const body = h("tbody", {}, changeRows(name, firstRows));
  const status = h("span", { class: "pager-status", role: "status", "aria-live": "polite" });
  const prev = h("button", { type: "button", id: "page-prev" }, "← Previous");
  const next = h("button", { type: "button", id: "page-next" }, "Next →");
  let offset = 0;
  const show = (count) => {
    status.textContent = total === 0 ? "No relabeled rows."
      : `Rows ${num(offset + 1)}–${num(offset + count)} of ${num(total)}`;
    prev.disabled = offset === 0;
    next.disabled = offset + PAGE >= total;
  };
  const go = async (to) => {
    prev.disabled = true;
    next.disabled = true;
    try {
      const page = await api("/diff/labels/rows", { params: { ...params, offset: to, limit: PAGE } });
      offset = page.offset;
      body.replaceChildren(...changeRows(name, page.rows));
      show(page.rows.length);
    } catch (err) {
      status.replaceChildren(errorBox(err));
      show(body.children.length);
    }
  };
  prev.addEventListener("click", () => go(Math.max(0, offset - PAGE)));
  next.addEventListener("click", () => go(offset + PAGE));
  show(firstRows.length);
  return h("section", { "aria-labelledby": "rows-title" },
    h("h2", { id: "rows-title" }, "Relabeled rows"),
    h("div", { class: "scroll" }, h("table", { class: "grid", id: "changes" },
      h("thead", {}, h("tr", {}, ["Key", "Before (A)", "After (B)", "Changed by", "Guideline", "Labeled at"]
        .map((t) => h("th", { scope: "col" }, t)))), body)),
    h("div", { class: "pager" }, prev, status, next));
}

/** A column is a label column (categorical) unless most of its values are distinct: ids, scores, free text. */
export function categorical(d) {
  const classes = new Set([...Object.keys(d.distribution_a), ...Object.keys(d.distribution_b)]).size;
  const rows = Math.max(d.rows_a, d.rows_b);
  return rows < 20 || classes <= Math.max(20, rows / 2);
}

function notLabelColumn(column, d) {
  const classes = new Set([...Object.keys(d.distribution_a), ...Object.keys(d.distribution_b)]).size;
  return h("section", { id: "not-labels", class: "notice" }, h("h2", {}, `“${column}” is not a label column`),
    h("p", {}, `It holds ${num(classes)} distinct values in ${num(Math.max(d.rows_a, d.rows_b))} rows, so most `,
      "values are unique (an id, a score or free text), and a change matrix would say nothing. ",
      `${num(d.relabeled)} of ${num(d.rows_in_both)} rows in both snapshots changed it. `,
      "Name a categorical column above to see how its classes moved; the row diff follows."));
}

async function rowDiff(view, a, b) {
  const d = await api("/diff", { params: { a, b, rows: 0 } });
  view.append(h("section", { id: "row-diff" }, h("h2", {}, "Row diff"),
    h("dl", { class: "facts" },
      ["added", "removed", "changed", "unchanged"].map((k) => [h("dt", {}, k), h("dd", {}, num(d[k]))])),
    Object.keys(d.changed_cells).length ? countTable("changed-cells", "Column", d.changed_cells) : ""));
}

export async function diffPage(view, _args, query) {
  const a = query.get("a") || "";
  const b = query.get("b") || "";
  const column = query.get("column") || "label";
  const name = datasetOf(b || a);
  view.replaceChildren(h("h1", {}, "Label diff"), refForm(a, b, column));
  if (!a || !b) {
    view.append(h("p", {}, "Name two snapshots (", h("code", {}, "NAME@REF"), "), or pick them on a dataset's page."));
    return;
  }
  const loading = h("p", { class: "muted", role: "status" }, "Comparing…");
  view.append(loading);
  let d;
  try {
    d = await api("/diff", { params: { a, b, labels: true, column, rows: PAGE } });
  } catch (err) {
    loading.remove();
    if (!(err instanceof ApiError) || err.status === 401 || err.status === 404) throw err;
    view.append(errorBox(err));
    await rowDiff(view, a, b);
    return;
  }
  loading.remove();
  if (!categorical(d)) {
    view.append(h("p", {}, link(`#/datasets/${seg(name)}`, `← ${name} history`)), notLabelColumn(column, d));
    await rowDiff(view, a, b);
    return;
  }
  if (d.relabeled === 0 && d.rows_a === d.rows_b && d.total_variation === 0) {
    view.append(h("p", {}, link(`#/datasets/${seg(name)}`, `← ${name} history`)),
      h("p", { class: "empty", id: "no-change" }, `Nothing changed in “${column}” between A and B: `,
        `${num(d.rows_in_both)} rows in both, none relabeled.`));
    return;
  }
  view.append(
    h("p", {}, link(`#/datasets/${seg(name)}`, `← ${name} history`)),
    h("dl", { class: "facts", id: "diff-facts" },
      h("dt", {}, "Rows in A"), h("dd", { "data-field": "rows_a" }, num(d.rows_a)),
      h("dt", {}, "Rows in B"), h("dd", { "data-field": "rows_b" }, num(d.rows_b)),
      h("dt", {}, "In both"), h("dd", { "data-field": "rows_in_both" }, num(d.rows_in_both)),
      h("dt", {}, "Relabeled"), h("dd", { "data-field": "relabeled" }, num(d.relabeled)),
      h("dt", {}, "Total variation"), h("dd", { "data-field": "total_variation", title: String(d.total_variation) },
        num(d.total_variation))),
    h("section", { "aria-labelledby": "matrix-title" }, h("h2", { id: "matrix-title" }, "Change matrix"),
      heatMap(d.matrix, d.net_change)),
    h("div", { class: "two" },
      h("section", { "aria-labelledby": "net-title" }, h("h2", { id: "net-title" }, "Net change per class (B − A)"),
        h("div", { class: "scroll" }, netChangeChart(d.net_change))),
      h("section", { "aria-labelledby": "who-title" }, h("h2", { id: "who-title" }, "Who changed them"),
        countTable("by-annotator", "Annotator", d.by_annotator),
        countTable("by-guideline", "Guideline version", d.by_guideline))),
    pagedTable({ a, b, column }, name, d.relabeled, d.changes));
}
