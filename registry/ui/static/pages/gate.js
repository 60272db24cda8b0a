// Gate: each check with metric, threshold and severity, the waiver, the policy version, and past results.

import { api, ApiError, apiList, may, refresh, seg } from "../api.js";
import { emptyState, errorBox, gateBadge, h, labelled, link, num, plain, shortId, table, time } from "../dom.js";

function value(v) {
  return typeof v === "number" ? num(v) : v === null || v === undefined ? "—" : String(v);
}

const LABELS = { per_column: "nulls per column", per_class: "per class", examples: "examples", error: "error",
  note: "note", gold_items: "gold items", classes_below_min: "classes below the minimum" };

/** A detail value as short text: numbers grouped, objects as "name: value" pairs, long lists cut. */
function detailText(value, depth = 0) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") return num(value);
  if (Array.isArray(value)) {
    const shown = value.slice(0, 8).map((v) => detailText(v, depth + 1)).join(", ");
    return value.length > 8 ? `${shown}, … (${num(value.length)} in all)` : shown || "none";
  }
  if (typeof value === "object") {
    if (depth > 1) return JSON.stringify(value);
    const entries = Object.entries(value);
    const shown = entries.slice(0, 8).map(([k, v]) => `${k}: ${detailText(v, depth + 1)}`).join("; ");
    return entries.length > 8 ? `${shown}; … (${num(entries.length)} in all)` : shown || "none";
  }
  return String(value);
}

/** Every detail of a check result, visible (not only in a tooltip). */
function detailsList(details) {
  const entries = Object.entries(details || {});
  if (!entries.length) return h("span", { class: "muted" }, "—");
  return h("ul", { class: "details-list" }, entries.map(([key, value]) => h("li", {},
    h("span", { class: "muted" }, `${LABELS[key] || key.replaceAll("_", " ")}: `), detailText(value))));
}

function checksTable(checks, id) {
  return table(["Check", "Kind", "Severity", "Metric", "Threshold", "Result", "Details"],
    checks.map((c) => h("tr", { class: c.passed ? "pass" : "fail", "data-check": c.name },
      h("th", { scope: "row" }, c.name),
      h("td", {}, c.check),
      h("td", {}, c.severity),
      h("td", { class: "num" }, value(c.metric)),
      h("td", { class: "num nowrap" }, value(c.threshold)),
      h("td", {}, c.passed ? h("span", { class: "badge gate-passed" }, "pass")
        : h("span", { class: "badge gate-failed" }, "FAIL")),
      h("td", { class: "details-cell" }, detailsList(c.details)))),
    { class: "grid checks", id });
}

function waiverBox(w) {
  return h("section", { id: "waiver" }, h("h2", {}, "Waiver"),
    h("dl", { class: "facts" },
      h("dt", {}, "Id"), h("dd", {}, w.id),
      h("dt", {}, "Reason"), h("dd", {}, w.reason),
      h("dt", {}, "Checks"), h("dd", {}, w.checks ? w.checks.join(", ") : "all checks"),
      h("dt", {}, "By"), h("dd", {}, w.created_by),
      h("dt", {}, "At"), h("dd", {}, time(w.created_at)),
      h("dt", {}, "Expires"), h("dd", {}, w.expires_at ? time(w.expires_at) : "never")));
}

function qaButton(ref) {
  const status = h("span", { role: "status" });
  const button = h("button", { type: "button", id: "run-qa", onclick: async () => {
    button.disabled = true;
    status.textContent = "Evaluating…";
    try {
      await api(`/qa/${seg(ref)}`, { method: "POST" });
      refresh();
    } catch (err) {
      button.disabled = false;
      status.replaceChildren(errorBox(err));
    }
  } }, "Run QA now");
  return h("div", { class: "toolbar write" }, button, status);
}

function waiveForm(ref, failed) {
  const reason = h("input", { type: "text", required: true, size: 40 });
  const expires = h("input", { type: "text", placeholder: "7d or 2026-12-31", size: 16 });
  const boxes = failed.map((c) => h("input", { type: "checkbox", value: c.name }));
  const status = h("span", { role: "status" });
  return h("form", { class: "write", id: "waive-form", onsubmit: async (event) => {
    event.preventDefault();
    const checks = boxes.filter((b) => b.checked).map((b) => b.value);
    try {
      await api(`/gates/${seg(ref)}/waivers`, { method: "POST", body: { reason: reason.value.trim(),
        checks: checks.length ? checks : null, expires: expires.value.trim() || null } });
      refresh();
    } catch (err) {
      status.replaceChildren(errorBox(err));
    }
  } },
  h("h2", {}, "Waive this gate"),
  h("div", { class: "toolbar" }, labelled("waive-reason", "Reason", reason), labelled("waive-expires", "Expires", expires)),
  boxes.length ? h("fieldset", {}, h("legend", {}, "Checks to waive (none ticked: all)"),
    boxes.map((box, i) => labelled(`waive-check-${i}`, failed[i].name, box))) : "",
  h("button", { type: "submit" }, "Waive"), status);
}

export async function gatePage(view, [ref]) {
  const gate = await api(`/gates/${seg(ref)}`);
  let results = [];
  let resultsError = null;
  try {
    results = await apiList(`/gates/${seg(ref)}/results`);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status === 401) throw err;
    resultsError = err;
  }
  const current = results.find((r) => r.id === gate.result_id);
  const dataset = gate.dataset;
  view.replaceChildren(
    h("h1", {}, "Gate of ", h("span", { class: "ref" }, `${dataset}@${gate.snapshot_id.slice(0, 12)}`)),
    h("p", {}, link(`#/datasets/${seg(dataset)}`, `← ${dataset} history`), " · ",
      link(`#/lineage/${seg(`${dataset}@${gate.snapshot_id}`)}`, "lineage")),
    h("p", { class: "gate-state", id: "gate-state" }, gateBadge(gate.state), " ", plain(gate.message)),
    h("dl", { class: "facts" },
      h("dt", {}, "Snapshot"), h("dd", {}, shortId(gate.snapshot_id)),
      h("dt", {}, "Policy version"), h("dd", { id: "policy-version" }, gate.policy_version ?? "none"),
      h("dt", {}, "Policy hash"), h("dd", {}, gate.policy_hash ? shortId(gate.policy_hash) : "—"),
      h("dt", {}, "Evaluated"), h("dd", {}, time(gate.evaluated_at)),
      h("dt", {}, "Result"), h("dd", {}, gate.result_id ?? "—")));
  const checks = h("section", { "aria-labelledby": "checks-title" }, h("h2", { id: "checks-title" }, "Checks"));
  if (current) {
    checks.append(checksTable(current.checks, "checks"));
  } else if (gate.failed.length || gate.warnings.length) {
    checks.append(checksTable([...gate.failed, ...gate.warnings].map((c) => ({ ...c, passed: false,
      severity: gate.failed.includes(c) ? "error" : "warn", details: { error: c.error } })), "checks"));
  } else if (gate.state === "no_policy") {
    checks.append(emptyState("This dataset has no QA policy yet, so there is nothing to evaluate."));
  } else {
    checks.append(emptyState("No evaluation under the current policy yet."));
  }
  view.append(checks);
  if (gate.waiver) view.append(waiverBox(gate.waiver));
  if (may("qa_run")) view.append(qaButton(ref));
  if (may("waive") && ["failed", "stale", "never_evaluated", "waived"].includes(gate.state)) {
    view.append(waiveForm(ref, gate.failed));
  }
  const past = h("section", { "aria-labelledby": "history-title" }, h("h2", { id: "history-title" },
    "History of gate results"));
  if (resultsError) past.append(errorBox(resultsError));
  else if (!results.length) past.append(emptyState("This snapshot was never evaluated."));
  else {
    past.append(h("div", { class: "results", id: "results" }, results.map((r) => h("details", {},
      h("summary", {}, time(r.created_at), " ", gateBadge(r.status), ` policy v${r.policy_version} · by ${r.created_by}`
        + ` · ${num(r.duration_ms)} ms · ${r.checks.filter((c) => !c.passed).length.toLocaleString()} failed`),
      checksTable(r.checks, null)))));
  }
  view.append(past);
}
