// Sample provenance: every labeling act and every snapshot that touched one sample, oldest first.

import { apiList, seg } from "../api.js";
import { h, link, shortId, table, time } from "../dom.js";

/** Who made the event: the annotator or committer, or for a model's prediction the model and version. */
function by(e) {
  if (e.source_kind && e.source_kind !== "human") {
    const model = `model ${e.model_version || "(version unknown)"}`;
    return e.annotator ? `${e.annotator} (${model})` : model;
  }
  return e.annotator ?? "—";
}

export async function samplePage(view, [name, key]) {
  const entries = await apiList(`/datasets/${seg(name)}/history`, { params: { key } });
  view.replaceChildren(
    h("h1", {}, `Sample ${key}`),
    h("p", {}, link(`#/datasets/${seg(name)}`, `← ${name} history`), ` · ${entries.length.toLocaleString()} events in time order; a commit shows the row's value it wrote.`),
    h("div", { class: "scroll" }, table(["Time", "Event", "Value", "By", "Source", "Guideline", "Snapshot", "Message",
      "Annotation"],
      entries.map((e) => h("tr", { class: `kind-${e.kind}` },
        h("td", {}, time(e.time)),
        h("td", {}, e.kind === "label" ? `label ${e.change ?? ""}` : `snapshot ${e.change ?? ""}`),
        h("td", {}, e.value ?? "—"),
        h("td", {}, by(e)),
        h("td", {}, e.source_kind ?? "—"),
        h("td", {}, e.guideline_version ?? "—"),
        h("td", {}, e.snapshot_id ? link(`#/gate/${seg(`${name}@${e.snapshot_id}`)}`, shortId(e.snapshot_id)) : "—"),
        h("td", {}, e.message ?? ""),
        h("td", {}, e.annotation_id ?? "—"))),
      { class: "grid", id: "sample-history" })));
}
