// Audit trail: events filtered by dataset, actor, action and time; the chain's verification and checkpoint.

import { api } from "../api.js";
import { errorBox, h, labelled, num, shortId, table, time } from "../dom.js";

const FILTERS = [["dataset", "Dataset"], ["actor", "Actor"], ["action", "Action (or prefix ending in .)"],
  ["since", "Since (ISO)"], ["until", "Until (ISO)"], ["limit", "Newest"]];

function filterForm(query) {
  const inputs = Object.fromEntries(FILTERS.map(([name]) => [name, h("input", { type: name === "limit" ? "number" : "text",
    name, value: query.get(name) || (name === "limit" ? "200" : ""), min: name === "limit" ? 1 : null,
    size: name === "limit" ? 6 : 18 })]));
  return h("form", { class: "toolbar", id: "audit-filter", onsubmit: (event) => {
    event.preventDefault();
    const q = new URLSearchParams();
    for (const [name] of FILTERS) if (inputs[name].value.trim()) q.set(name, inputs[name].value.trim());
    location.hash = `#/audit?${q}`;
  } }, FILTERS.map(([name, text]) => labelled(`audit-${name}`, text, inputs[name])),
  h("button", { type: "submit" }, "Filter"));
}

function chainPanel() {
  const verify = h("dd", { id: "chain-state" }, "verifying…");
  const checkpoint = h("dd", { id: "checkpoint" }, "…");
  api("/audit/verify", { method: "POST", body: { checkpoint: null } }).then(
    (r) => verify.replaceChildren(h("span", { class: `badge ${r.ok ? "gate-passed" : "gate-failed"}` },
      r.ok ? "intact" : "BROKEN"), ` ${num(r.events)} events, head #${num(r.head_seq)}`,
    r.ok ? "" : ` · first bad event #${num(r.first_bad_seq)}: ${r.problem}`),
    (err) => verify.replaceChildren(errorBox(err)));
  api("/audit/checkpoints", { method: "POST" }).then(
    (c) => checkpoint.replaceChildren(`#${num(c.seq)} `, shortId(c.hash), " at ", time(c.time)),
    (err) => checkpoint.replaceChildren(errorBox(err)));
  return h("dl", { class: "facts", id: "chain" }, h("dt", {}, "Chain"), verify, h("dt", {}, "Checkpoint"), checkpoint);
}

export async function auditPage(view, _args, query) {
  const params = Object.fromEntries(FILTERS.map(([name]) => [name, query.get(name)]));
  params.limit = params.limit || 200;
  view.replaceChildren(h("h1", {}, "Audit trail"), chainPanel(), filterForm(query));
  const events = await api("/audit/events", { params });
  events.reverse();
  view.append(
    h("p", { class: "muted", id: "audit-count" }, `${events.length.toLocaleString()} ${events.length === 1 ? "event" : "events"}, newest first.`),
    h("div", { class: "scroll" }, table(["#", "Time", "Actor", "Action", "Object", "Dataset", "Snapshot", "Client",
      "Details"], events.map((e) => h("tr", { "data-seq": e.seq },
      h("td", { class: "num" }, num(e.seq)),
      h("td", {}, time(e.time)),
      h("td", {}, e.actor, h("span", { class: "muted" }, ` ${e.actor_kind}`)),
      h("td", { class: "action" }, e.action),
      h("td", {}, `${e.object_type} ${e.object_id}`),
      h("td", {}, e.dataset ?? "—"),
      h("td", {}, e.snapshot ? shortId(e.snapshot) : "—"),
      h("td", {}, [e.client.kind, e.client.remote_addr].filter(Boolean).join(" ")),
      h("td", { class: "details" }, h("code", {}, JSON.stringify(e.details))))),
    { class: "grid", id: "audit-events" })));
}
