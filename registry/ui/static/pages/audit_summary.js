// One readable line per audit event, by action; the raw details stay one click away.

import { num } from "../dom.js";

const list = (values) => (values && values.length ? values.join(", ") : "none");
const short = (id) => (id ? String(id).slice(0, 12) : "?");

const SUMMARIES = {
  "dataset.create": (d, e) => `created ${e.object_id} keyed by ${list(d.key_columns)}, owner ${d.owner ?? "?"}`,
  "snapshot.commit": (d) => `${d.mode ?? "commit"}: +${num(d.added)} ~${num(d.changed)} −${num(d.removed)} → `
    + `${num(d.rows)} rows${d.message ? ` · “${d.message}”` : ""}`,
  "snapshot.import": (d) => `import: +${num(d.added)} ~${num(d.changed)} −${num(d.removed)} → ${num(d.rows)} rows`
    + `${d.message ? ` · “${d.message}”` : ""}`,
  "snapshot.compact": (d) => `compacted ${num(d.layers_before)} layers into ${num(d.layers_after)}`,
  "ref.tag": (d, e) => `tagged ${short(e.snapshot)} as ${d.tag}`,
  "policy.set": (d) => `policy v${d.version} (${short(d.policy_hash)})`,
  "gate.evaluate": (d) => `gate ${d.status} under policy v${d.policy_version}`
    + `${d.failed && d.failed.length ? ` · failed: ${list(d.failed)}` : ""}`,
  "gate.waive": (d) => `waived ${d.checks ? list(d.checks) : "all checks"}: “${d.reason}”`
    + `${d.expires_at ? ` until ${d.expires_at}` : ""}`,
  "gate.refuse": (d) => `refused a read: gate ${d.gate}${d.failed && d.failed.length ? ` (${list(d.failed)})` : ""}`,
  "pin.create": (d) => `pinned for job ${d.job ?? "-"} in ${d.lockfile ?? "?"} (gate ${d.gate})`,
  "pin.refuse": (d) => `refused a pin: gate ${d.gate}${d.failed && d.failed.length ? ` (${list(d.failed)})` : ""}`,
  "read.training": (d) => `training read of ${num(d.rows)} rows for job ${d.job ?? "-"} (gate ${d.gate})`,
  "read.unverified": (d) => `unverified read of ${num(d.rows)} rows for job ${d.job ?? "-"} (gate ${d.gate})`,
  "token.create": (d, e) => `token ${e.object_id}: role ${d.role}, datasets ${d.datasets && d.datasets.length
    ? list(d.datasets) : "all"}${d.expires_at ? `, expires ${d.expires_at}` : ""}`,
  "token.revoke": (d, e) => `revoked token ${e.object_id} (role ${d.role})`,
  "request.denied": (d) => `denied ${d.method} ${d.path} (needs ${d.action})`,
  "audit.seal": (d) => `sealed events ${num(d.first_seq)}–${num(d.last_seq)} (${num(d.events)} events)`,
  "lineage.ingest": (d) => `lineage: ${d.job ?? "a job"} read ${list(d.consumed)}`,
};

/** A sentence for the event; unknown actions list their first few simple details. */
export function summary(event) {
  const d = event.details || {};
  const known = SUMMARIES[event.action];
  if (known) {
    try {
      return known(d, event);
    } catch {
      // fall through to the generic line
    }
  }
  const simple = Object.entries(d).filter(([, v]) => v === null || typeof v !== "object").slice(0, 4);
  return simple.length ? simple.map(([k, v]) => `${k}: ${v}`).join(" · ") : "—";
}
