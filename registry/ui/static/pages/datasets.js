// Datasets: each with its head snapshot, rows, last commit and the head's gate badge.

import { api, apiList, seg } from "../api.js";
import { emptyState, gateBadge, h, link, num, shortId, table, time } from "../dom.js";

export async function datasetsPage(view) {
  const datasets = await apiList("/datasets");
  const rows = datasets.map((d) => {
    const gateCell = h("td", { class: "gate-cell" });
    if (d.head) {
      gateCell.append(h("span", { class: "muted" }, "…"));
      api(`/gates/${seg(`${d.name}@${d.head}`)}`).then(
        (gate) => gateCell.replaceChildren(link(`#/gate/${seg(`${d.name}@${d.head}`)}`, gateBadge(gate.state))),
        (err) => gateCell.replaceChildren(h("span", { class: "muted", title: err.message }, "unavailable")));
    } else {
      gateCell.append(h("span", { class: "muted" }, "no snapshot"));
    }
    return h("tr", { "data-dataset": d.name },
      h("th", { scope: "row" }, link(`#/datasets/${seg(d.name)}`, d.name)),
      h("td", {}, d.description || ""),
      h("td", {}, d.head ? shortId(d.head) : "—"),
      h("td", { class: "num" }, num(d.rows)),
      h("td", { class: "num" }, num(d.snapshots)),
      h("td", {}, time(d.last_commit_at)),
      gateCell);
  });
  view.replaceChildren(
    h("h1", {}, "Datasets"),
    datasets.length === 0
      ? emptyState("No datasets yet, or none this token may read.")
      : table(["Dataset", "Description", "Head snapshot", "Rows", "Snapshots", "Last commit", "Gate"], rows,
        { class: "grid", id: "datasets" }));
}
