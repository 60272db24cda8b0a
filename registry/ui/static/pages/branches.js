// Branches of a dataset: the list, comparing two branches, the conflicts of merging one into another
// (with who set each side), and a merge button for tokens allowed to merge.

import { api, ApiError, apiList, may, refresh, seg } from "../api.js";
import { errorBox, h, labelled, link, shortId, table, time } from "../dom.js";

const who = (c, side) => (c[`${side}_annotator`]
  ? h("div", { class: "muted" }, `${c[`${side}_annotator`]} · ${c[`${side}_labeled_at`] || "—"} · guideline ${c[`${side}_guideline`] || "—"}`)
  : "");

function conflictTable(conflicts) {
  if (!conflicts.length) return h("p", { id: "no-conflicts" }, "No conflicts: the merge is clean.");
  return table(["Key", "Column", "Kind", "Base", "Ours", "Theirs"],
    conflicts.map((c) => h("tr", { "data-column": c.column },
      h("td", {}, JSON.stringify(c.key)), h("td", {}, c.column), h("td", {}, c.kind),
      h("td", {}, c.base ?? "—"),
      h("td", {}, c.ours ?? "—", who(c, "ours")),
      h("td", {}, c.theirs ?? "—", who(c, "theirs")))),
    { class: "grid", id: "conflicts" });
}

function mergeForm(name, source, into, head) {
  const strategy = h("select", {}, ["fail", "ours", "theirs"].map((s) => h("option", { value: s }, s)));
  const prefer = h("select", {}, ["", "ground-truth", "reviewer", "majority"].map((p) =>
    h("option", { value: p }, p || "(none)")));
  const status = h("span", { role: "status" });
  return h("form", { class: "toolbar write", id: "merge-form", onsubmit: async (event) => {
    event.preventDefault();
    status.textContent = "Merging…";
    try {
      const result = await api(`/datasets/${seg(name)}/merges`, { method: "POST", body: {
        source, into, strategy: strategy.value, prefer: prefer.value || null, expect_target: head } });
      status.textContent = `${result.outcome}: ${into} is now ${result.snapshot_id.slice(0, 12)}`;
      refresh();
    } catch (err) {
      status.replaceChildren(errorBox(err));
    }
  } }, labelled("merge-strategy", "Strategy", strategy), labelled("merge-prefer", "Prefer", prefer),
  h("button", { type: "submit" }, `Merge ${source} into ${into}`), status);
}

export async function branchesPage(view, [name], query) {
  const branches = await apiList(`/datasets/${seg(name)}/branches`);
  const names = branches.map((b) => b.name);
  const source = query.get("source") || names.find((n) => n !== "main") || "main";
  const into = query.get("into") || "main";
  const pick = (id, text, chosen) => labelled(id, text, h("select", {}, names.map((n) =>
    h("option", { value: n, selected: n === chosen }, n))));
  const from = pick("compare-source", "Merge", source);
  const to = pick("compare-into", "into", into);
  view.replaceChildren(
    h("h1", {}, "Branches of ", h("span", { class: "ref" }, name)),
    h("p", {}, link(`#/datasets/${seg(name)}`, `← ${name} history`)),
    table(["Branch", "Head", "Protected", "Merged into main", "Updated"],
      branches.map((b) => h("tr", { "data-branch": b.name },
        h("th", { scope: "row" }, link(`#/datasets/${seg(`${name}@${b.name}`)}`, b.name)),
        h("td", {}, shortId(b.snapshot_id)), h("td", {}, b.protected ? "protected" : ""),
        h("td", {}, b.merged ? "yes" : "no"), h("td", {}, time(b.updated_at)))),
      { class: "grid", id: "branches" }),
    h("form", { class: "toolbar", onsubmit: (event) => {
      event.preventDefault();
      location.hash = `#/branches/${seg(name)}?source=${seg(from.lastChild.value)}&into=${seg(to.lastChild.value)}`;
    } }, from, to, h("button", { type: "submit" }, "Compare")));
  if (source === into) return;
  const target = branches.find((b) => b.name === into);
  view.append(h("h2", {}, `${source} → ${into}`),
    h("p", {}, link(`#/diff?a=${seg(`${name}@${into}`)}&b=${seg(`${name}@${source}`)}`, "row-level diff of the two heads")));
  try {
    const found = await api(`/datasets/${seg(name)}/conflicts`, { params: { source, into } });
    view.append(conflictTable(found.conflicts));
  } catch (err) {
    if (!(err instanceof ApiError) || err.status === 401) throw err;
    view.append(errorBox(err));
  }
  if (may("merge") && target) view.append(mergeForm(name, source, into, target.snapshot_id));
}
