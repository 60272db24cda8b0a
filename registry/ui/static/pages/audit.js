// Audit trail: events filtered by dataset, actor, action and time; the chain's verification and checkpoint.

import { api, apiList } from "../api.js";
import { errorBox, h, labelled, num, shortId, table, time } from "../dom.js";
import { summary } from "./audit_summary.js";

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

const COLUMNS = ["seq", "time", "actor", "actor_kind", "action", "object_type", "object_id", "dataset", "snapshot",
  "client", "summary", "details"];

function rowsOf(events) {
  return events.map((e) => ({ ...e, client: [e.client.kind, e.client.remote_addr].filter(Boolean).join(" "),
    summary: summary(e), details: JSON.stringify(e.details) }));
}

function csvCell(value) {
  const text = value === null || value === undefined ? "" : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** A download of what is shown: CSV (one line per event) or JSON (the events as the API gave them). */
function exportButtons(events) {
  const save = (name, type, text) => {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const a = h("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };
  const csv = () => save("audit-events.csv", "text/csv", [COLUMNS.join(","),
    ...rowsOf(events).map((r) => COLUMNS.map((c) => csvCell(r[c])).join(","))].join("\n") + "\n");
  const json = () => save("audit-events.json", "application/json", JSON.stringify(events, null, 2) + "\n");
  return h("div", { class: "toolbar", id: "audit-export" },
    h("button", { type: "button", id: "export-csv", onclick: csv, disabled: events.length === 0 }, "Download CSV"),
    h("button", { type: "button", id: "export-json", onclick: json, disabled: events.length === 0 }, "Download JSON"));
}

function eventRow(e) {
  return h("tr", { "data-seq": e.seq, "data-action": e.action },
    h("td", { class: "num" }, num(e.seq)),
    h("td", { class: "nowrap" }, time(e.time)),
    h("td", {}, e.actor, h("span", { class: "muted" }, ` ${e.actor_kind}`)),
    h("td", { class: "action nowrap" }, e.action),
    h("td", { class: "object", title: `${e.object_type} ${e.object_id}` }, h("span", { class: "muted" },
      `${e.object_type} `), e.object_id),
    h("td", {}, e.dataset ?? "—"),
    h("td", { class: "summary-cell" }, h("details", { class: "event-details" },
      h("summary", {}, summary(e)),
      h("dl", { class: "facts small" },
        h("dt", {}, "Snapshot"), h("dd", {}, e.snapshot ? shortId(e.snapshot) : "—"),
        h("dt", {}, "Client"), h("dd", {}, [e.client.kind, e.client.remote_addr].filter(Boolean).join(" ") || "—"),
        h("dt", {}, "Hash"), h("dd", {}, shortId(e.hash))),
      h("pre", { class: "json" }, JSON.stringify(e.details, null, 2)))));
}

export async function auditPage(view, _args, query) {
  const params = Object.fromEntries(FILTERS.map(([name]) => [name, query.get(name)]));
  params.limit = params.limit || 200;
  view.replaceChildren(h("h1", {}, "Audit trail"), chainPanel(), filterForm(query));
  const events = await apiList("/audit/events", { params });
  events.reverse();
  if (events.length === 0) {
    view.append(h("p", { class: "empty", id: "audit-count" }, "No audit events match these filters."));
    return;
  }
  view.append(
    h("div", { class: "toolbar spread" },
      h("p", { class: "muted", id: "audit-count" }, `${events.length.toLocaleString()} ${events.length === 1 ? "event"
        : "events"}, newest first. Open a summary for the event's full details.`),
      exportButtons(events)),
    h("div", { class: "scroll" }, table(["#", "Time", "Actor", "Action", "Object", "Dataset", "What happened"],
      events.map(eventRow), { class: "grid audit", id: "audit-events" })));
}
