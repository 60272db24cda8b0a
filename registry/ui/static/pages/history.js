// Dataset history: the snapshot graph with refs, author, time, message and change summary; pick two to diff.

import { api, apiList, may, refresh, seg } from "../api.js";
import { emptyState, errorBox, gateBadge, h, labelled, link, num, shortId, time } from "../dom.js";
import { layout, rowGraph } from "../graph.js";

function refBadges(snap) {
  return [
    ...snap.branches.map((b) => h("span", { class: "badge branch", title: "branch head" }, b)),
    ...snap.tags.map((t) => h("span", { class: "badge tag", title: "tag" }, t)),
  ];
}

function changes(snap) {
  const counts = `+${num(snap.added)} ~${num(snap.changed)} −${num(snap.removed)}`;
  return h("span", { title: `${num(snap.added)} added, ${num(snap.changed)} changed, ${num(snap.removed)} removed` },
    snap.summary || counts);
}

/** Rows drawn at once; the rest on request, so a long history opens as fast as a short one. */
const CHUNK = 100;

export async function historyPage(view, [name]) {
  const snapshots = await apiList(`/datasets/${seg(name)}/log`);
  if (snapshots.length === 0) {
    view.replaceChildren(h("h1", {}, name), emptyState(`No snapshots yet: nothing has been committed to ${name}.`));
    return;
  }
  const { rows, width } = layout(snapshots);
  const ref = (snap) => `${name}@${snap.id}`;
  const radio = (group, snap, checked) => h("input", { type: "radio", name: group, value: snap.id, checked,
    "aria-label": `${group === "a" ? "From (A)" : "To (B)"}: snapshot ${snap.id.slice(0, 12)}` });
  const row = (snap, i) => h("tr", { "data-snapshot": snap.id },
    h("td", { class: "graph" }, rowGraph(rows[i], width, snap)),
    h("td", { class: "pick" }, radio("a", snap, i === 1 || (snapshots.length === 1 && i === 0))),
    h("td", { class: "pick" }, radio("b", snap, i === 0)),
    h("td", {}, shortId(snap.id), " ", ...refBadges(snap)),
    h("td", { class: "message", title: snap.message }, snap.message || ""),
    h("td", {}, snap.author),
    h("td", {}, time(snap.created_at)),
    h("td", { class: "summary", title: snap.summary }, changes(snap)),
    h("td", { class: "num" }, num(snap.rows)),
    h("td", { class: "links" }, link(`#/gate/${seg(ref(snap))}`, "gate"), " ",
      link(`#/lineage/${seg(ref(snap))}`, "lineage")));
  const body = h("tbody", {});
  const more = h("button", { type: "button", id: "show-more" });
  const showMore = () => {
    const from = body.children.length;
    const to = Math.min(snapshots.length, from + CHUNK);
    body.append(...snapshots.slice(from, to).map((snap, i) => row(snap, from + i)));
    const left = snapshots.length - to;
    more.textContent = `Show ${num(Math.min(CHUNK, left))} more (${num(left)} not shown)`;
    more.hidden = left === 0;
  };
  more.addEventListener("click", showMore);
  showMore();
  const picked = (group) => {
    const el = view.querySelector(`input[name=${group}]:checked`);
    return el ? el.value : null;
  };
  const diffForm = h("form", { class: "toolbar", onsubmit: (event) => {
    event.preventDefault();
    const a = picked("a");
    const b = picked("b");
    if (a && b) location.hash = `#/diff?a=${seg(`${name}@${a}`)}&b=${seg(`${name}@${b}`)}`;
  } }, h("button", { type: "submit", id: "diff-selected" }, "Diff A → B"),
  h("span", { class: "muted" }, "Pick A and B in the table below."));
  const sampleInput = h("input", { type: "text", required: true, placeholder: "e.g. 1042" });
  const sampleForm = h("form", { class: "toolbar", onsubmit: (event) => {
    event.preventDefault();
    location.hash = `#/sample/${seg(name)}/${seg(sampleInput.value.trim())}`;
  } }, labelled("sample-key", "Sample key", sampleInput), h("button", { type: "submit" }, "Show provenance"));
  const tools = h("div", { class: "tools" }, diffForm, sampleForm);
  if (may("tag")) tools.append(tagForm(view, name, picked));
  const head = snapshots[0];
  view.replaceChildren(
    h("h1", {}, name),
    h("p", { class: "muted" }, `${num(snapshots.length)} snapshots, newest first.`,
      head ? [" Head: ", shortId(head.id), " · ", link(`#/lineage/${seg(ref(head))}`, "lineage"), " · gate ",
        h("span", { id: "head-gate" }, "…"), " · ", link(`#/branches/${seg(name.split("@")[0])}`, "branches")] : ""),
    tools,
    h("div", { class: "scroll" }, h("table", { class: "grid history", id: "history" },
      h("caption", { class: "sr-only" }, `Snapshots of ${name}`),
      h("thead", {}, h("tr", {}, ["Graph", "A", "B", "Snapshot", "Message", "Author", "Time", "Changes", "Rows",
        ""].map((t) => h("th", { scope: "col" }, t)))),
      body)), more);
  if (head) {
    api(`/gates/${seg(ref(head))}`).then(
      (gate) => view.querySelector("#head-gate").replaceChildren(link(`#/gate/${seg(ref(head))}`,
        gateBadge(gate.state))),
      (err) => view.querySelector("#head-gate").replaceChildren(err.message));
  }
}

function tagForm(view, name, picked) {
  const input = h("input", { type: "text", required: true, placeholder: "release-2026-11" });
  const status = h("span", { role: "status" });
  return h("form", { class: "toolbar write", id: "tag-form", onsubmit: async (event) => {
    event.preventDefault();
    const b = picked("b");
    try {
      await api(`/refs/${seg(`${name}@${b}`)}/tags`, { method: "POST", body: { tag: input.value.trim() } });
      refresh();
    } catch (err) {
      status.replaceChildren(errorBox(err));
    }
  } }, labelled("tag-name", "Tag the snapshot picked as B", input), h("button", { type: "submit" }, "Create tag"),
  status);
}
