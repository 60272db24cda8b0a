"""Make the Label Studio fixtures: drive a real Label Studio server and keep every export it writes
(byte for byte as served).

Starts Label Studio (its own venv, see :mod:`scripts.label_studio_server`) on 127.0.0.1 with SQLite in
a temporary folder and, through its REST API only: signs up three annotators (two of them share the
display name "Alex Kim") and a reviewer through the organisation's invite link, creates an image
classification project (Choices) and an object detection project (RectangleLabels), imports tasks
with model predictions, has each task annotated by 1-3 annotators (seeded, with disagreements),
marks ground truth, cancels (skips) one annotation, deletes one, leaves a draft, exports every
format the export API offers (round 1), lets the reviewer relabel several tasks, and exports again
(round 2). ``facts.json`` records what was done, from the script's own bookkeeping (not from the
exports), so tests can check the importers against it.

    python scripts/label_studio_fixtures.py tests/fixtures/label-studio
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import random
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.label_studio_server import LabelStudioError, LabelStudioServer, request  # noqa: E402

__all__ = ["PROJECTS", "make_fixtures"]

SEED = 16
CLASSES = ("cat", "dog", "bird")
BOX_LABELS = ("car", "person")
PROJECTS = {
    "classification": {
        "title": "Animals (classification)",
        "tasks": 36,
        "config": '<View><Image name="image" value="$image"/><Choices name="label" toName="image" choice="single">'
                  + "".join(f'<Choice value="{c}"/>' for c in CLASSES) + "</Choices></View>",
    },
    "detection": {
        "title": "Street (detection)",
        "tasks": 24,
        "config": '<View><Image name="image" value="$image"/><RectangleLabels name="box" toName="image">'
                  + "".join(f'<Label value="{c}"/>' for c in BOX_LABELS) + "</RectangleLabels></View>",
    },
}
PEOPLE = {
    "a1": ("alex.kim@example.com", "Alex", "Kim"),
    "a2": ("alex.kim@example.org", "Alex", "Kim"),  # another person with the same display name
    "a3": ("priya.natarajan@example.com", "Priya", "Natarajan"),
    "reviewer": ("rita.reviewer@example.com", "Rita", "Reviewer"),
}
EXPORT_SKIP = ("_WITH_IMAGES",)
"""Export variants that download the task images (placeholder URLs here), so they hold no labels."""


@dataclass
class Run:
    """The server, the people's tokens and everything done, for ``facts.json``."""

    ls: LabelStudioServer
    rng: random.Random
    tokens: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, int] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    def api(self, method: str, path: str, body: Any = None, who: str | None = None) -> Any:
        return self.ls.api(method, path, body, token=self.tokens[who] if who else None)


def sign_up(run: Run, who: str) -> None:
    """Sign ``who`` up through the invite link (as a person would), read their token, set their name."""
    email, first, last = PEOPLE[who]
    invite = run.api("GET", "/api/invite")["invite_url"]
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    signup = f"{run.ls.url}{invite}"
    request(signup, opener=opener)
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    form = urllib.parse.urlencode({"email": email, "password": "Lab3l-" + email, "csrfmiddlewaretoken": csrf})
    opener.open(urllib.request.Request(signup, data=form.encode(), method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded", "Referer": signup}), timeout=60).read()
    token = request(f"{run.ls.url}/api/current-user/token", opener=opener)["token"]
    run.tokens[who] = token
    me = run.ls.api("GET", "/api/current-user/whoami", token=token)
    run.user_ids[who] = me["id"]
    run.ls.api("PATCH", f"/api/users/{me['id']}/", {"first_name": first, "last_name": last}, token=token)


def _classification(label: str) -> list[dict[str, Any]]:
    return [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}]


def _boxes(boxes: list[tuple[str, float, float, float, float]]) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "from_name": "box", "to_name": "image", "type": "rectanglelabels",
             "original_width": 640, "original_height": 480, "image_rotation": 0,
             "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0, "rectanglelabels": [label]}}
            for i, (label, x, y, w, h) in enumerate(boxes)]


def _truth(kind: str, rng: random.Random) -> Any:
    if kind == "classification":
        return rng.choice(CLASSES)
    return [(rng.choice(BOX_LABELS), round(rng.uniform(2, 60), 2), round(rng.uniform(2, 60), 2),
             round(rng.uniform(5, 30), 2), round(rng.uniform(5, 30), 2)) for _ in range(rng.randint(0, 3))]


def _answer(kind: str, truth: Any, rng: random.Random, agree: bool) -> Any:
    if kind == "classification":
        return truth if agree else rng.choice([c for c in CLASSES if c != truth])
    if agree or not truth:
        return truth
    first = truth[0]
    return [(BOX_LABELS[1 - BOX_LABELS.index(first[0])], *first[1:]), *truth[1:]]


def _result(kind: str, answer: Any) -> list[dict[str, Any]]:
    return _classification(answer) if kind == "classification" else _boxes(answer)


def _label_text(kind: str, answer: Any) -> Any:
    return answer if kind == "classification" else [b[0] for b in answer]


def build_project(run: Run, kind: str) -> dict[str, Any]:
    """Create a project, import its tasks with predictions, annotate; returns its facts."""
    spec, rng = PROJECTS[kind], run.rng
    project = run.api("POST", "/api/projects/", {"title": spec["title"], "label_config": spec["config"]})
    pid = project["id"]
    prefix = "cls" if kind == "classification" else "det"
    truths = [_truth(kind, rng) for _ in range(spec["tasks"])]
    tasks = [{"data": {"image": f"https://example.invalid/{prefix}/{i:03d}.jpg", "sample": f"{prefix}-{i:03d}"},
              "predictions": [{"model_version": f"{prefix}-model-v1", "score": round(rng.uniform(0.4, 0.99), 3),
                               "result": _result(kind, _answer(kind, truth, rng, rng.random() < 0.75))}]}
             for i, truth in enumerate(truths)]
    run.api("POST", f"/api/projects/{pid}/import", tasks)
    listed = run.api("GET", f"/api/tasks/?project={pid}&page_size=1000")
    task_list = sorted(listed["tasks"] if isinstance(listed, dict) else listed, key=lambda t: t["id"])
    prediction_of = {p["task"]: p["id"] for p in run.api("GET", f"/api/predictions/?project={pid}")}
    facts: dict[str, Any] = {"project_id": pid, "title": spec["title"], "tasks": len(task_list),
                             "predictions": len(tasks), "annotations": {}, "ground_truth": [],
                             "cancelled": [], "deleted": [], "drafts": [], "with_parent_prediction": []}
    for index, (task, truth) in enumerate(zip(task_list, truths, strict=True)):
        sample = task["data"]["sample"]
        people = rng.sample(["a1", "a2", "a3"], rng.choice([1, 2, 2, 3]))
        if index == 2:
            people = []  # one task nobody annotates
        acts = []
        for position, who in enumerate(people):
            answer = _answer(kind, truth, rng, rng.random() < 0.7)
            body: dict[str, Any] = {"result": _result(kind, answer), "lead_time": round(rng.uniform(2, 40), 3)}
            if who == "a1" and index % 5 == 0:
                body["ground_truth"] = True
            if position == 0 and index % 4 == 1:
                body["parent_prediction"] = prediction_of[task["id"]]
            if kind == "classification" and index == 7 and position == 0:
                body = {"result": [], "was_cancelled": True, "lead_time": 1.5}
            created = run.api("POST", f"/api/tasks/{task['id']}/annotations/", body, who)
            record = {"annotation_id": created["id"], "annotator": who, "user_id": run.user_ids[who],
                      "label": None if body.get("was_cancelled") else _label_text(kind, answer),
                      "ground_truth": bool(body.get("ground_truth")), "was_cancelled": bool(body.get("was_cancelled"))}
            if body.get("ground_truth"):
                facts["ground_truth"].append(created["id"])
            if body.get("was_cancelled"):
                facts["cancelled"].append({"task": sample, "annotation_id": created["id"], "annotator": who})
            if "parent_prediction" in body:
                facts["with_parent_prediction"].append(created["id"])
            acts.append(record)
        if index == 3:  # an annotation made and then deleted
            extra = next(p for p in ("a3", "a2", "a1") if p not in people)
            created = run.api("POST", f"/api/tasks/{task['id']}/annotations/",
                              {"result": _result(kind, truth), "lead_time": 3.0}, extra)
            run.api("DELETE", f"/api/annotations/{created['id']}/", None, extra)
            facts["deleted"].append({"task": sample, "annotation_id": created["id"], "annotator": extra})
        if index == 4:  # a draft that was never submitted
            drafter = next(p for p in ("a2", "a3", "a1") if p not in people)
            draft = run.api("POST", f"/api/tasks/{task['id']}/drafts", {"result": _result(kind, truth),
                                                                       "lead_time": 4.0}, drafter)
            facts["drafts"].append({"task": sample, "draft_id": draft["id"], "annotator": drafter})
        facts["annotations"][sample] = {"task_id": task["id"], "truth": _label_text(kind, truth), "acts": acts}
    return facts


def relabel(run: Run, kind: str, facts: dict[str, Any], count: int) -> None:
    """The reviewer edits the first (non-cancelled) annotation of ``count`` annotated tasks."""
    changed = []
    samples = [s for s, entry in facts["annotations"].items()
               if entry["acts"] and not entry["acts"][0]["was_cancelled"]]
    for sample in run.rng.sample(samples, count):
        entry = facts["annotations"][sample]
        act = entry["acts"][0]
        if kind == "classification":
            new = next(c for c in CLASSES if c != act["label"])
            result = _classification(new)
        else:
            new_boxes = [("person", 10.0, 10.0, 20.0, 20.0)]
            new = _label_text(kind, new_boxes)
            result = _boxes(new_boxes)
        run.api("PATCH", f"/api/annotations/{act['annotation_id']}/", {"result": result}, "reviewer")
        changed.append({"task": sample, "annotation_id": act["annotation_id"], "annotator": act["annotator"],
                        "before": act["label"], "after": new})
        act["label_after_review"] = new
    facts["relabelled"] = sorted(changed, key=lambda c: c["task"])


def export_all(run: Run, pid: int, folder: Path) -> list[str]:
    """Download every export format the project offers into ``folder``; the formats written."""
    folder.mkdir(parents=True, exist_ok=True)
    formats = run.api("GET", f"/api/projects/{pid}/export/formats")
    written = []
    for fmt in formats:
        name = fmt["name"]
        if fmt.get("disabled") or name.endswith(EXPORT_SKIP):
            continue
        raw = run.ls.api("GET", f"/api/projects/{pid}/export?exportType={name}&download_all_tasks=true", raw=True)
        if raw[:2] == b"PK":
            target = folder / f"{name.lower()}.zip"
        else:
            suffix = ".json" if raw.lstrip()[:1] in (b"[", b"{") else ".tsv" if name == "TSV" else ".csv"
            target = folder / f"{name.lower()}{suffix}"
        target.write_bytes(raw)
        written.append(name)
    (folder / "snapshot.json").write_bytes(snapshot_export(run, pid))
    return written


def snapshot_export(run: Run, pid: int) -> bytes:
    """The "snapshot" export (full user objects) made through the exports API and downloaded, as served."""
    options = {"annotations__completed_by": {"only_id": False}, "drafts": {"only_id": False},
               "predictions": {"only_id": False}}
    made = run.api("POST", f"/api/projects/{pid}/exports/", {"title": "fixture snapshot",
                                                            "serialization_options": options})
    for _ in range(120):
        if run.api("GET", f"/api/projects/{pid}/exports/{made['id']}")["status"] == "completed":
            break
        time.sleep(0.5)
    return bytes(run.ls.api("GET", f"/api/projects/{pid}/exports/{made['id']}/download?exportType=JSON", raw=True))


def make_fixtures(out: Path, ls: LabelStudioServer, seed: int = SEED) -> dict[str, Any]:
    """Drive the running server ``ls`` and write exports, ``users.json`` and ``facts.json`` under ``out``."""
    run = Run(ls, random.Random(seed))
    for who in PEOPLE:
        sign_up(run, who)
    version = ls.api("GET", "/api/version")
    facts: dict[str, Any] = {"label_studio_version": version.get("release") or version.get("label-studio-os-package",
                                                                                            {}).get("version"),
                             "seed": seed, "users": {who: {"id": run.user_ids[who], "email": PEOPLE[who][0],
                                                            "name": f"{PEOPLE[who][1]} {PEOPLE[who][2]}"}
                                                      for who in PEOPLE},
                             "projects": {}}
    for kind in PROJECTS:
        facts["projects"][kind] = build_project(run, kind)
    for kind, project in facts["projects"].items():
        project["formats"] = export_all(run, project["project_id"], out / kind / "round1")
    for kind, project in facts["projects"].items():
        relabel(run, kind, project, 5 if kind == "classification" else 3)
        export_all(run, project["project_id"], out / kind / "round2")
    (out / "users.json").write_bytes(ls.api("GET", "/api/users/", raw=True))
    for kind, spec in PROJECTS.items():
        (out / kind / "config.xml").write_text(spec["config"] + "\n")
    (out / "facts.json").write_text(json.dumps(facts, indent=1, ensure_ascii=False))
    (out / "README.md").write_text(readme(facts))
    return facts


def readme(facts: dict[str, Any]) -> str:
    """The fixtures' README: where they come from and the facts a test can rely on."""
    lines = [
        "# Label Studio exports made by a real server",
        "",
        f"Every file here was written by Label Studio {facts['label_studio_version']} (open-source edition, SQLite),",
        "driven through its REST API by `scripts/label_studio_fixtures.py` (seed "
        f"{facts['seed']}): `python scripts/label_studio_fixtures.py tests/fixtures/label-studio`.",
        "Do not edit them by hand; re-run the script (it installs Label Studio into its own venv).",
        "",
        "- `users.json`: `GET /api/users/` (use with `registry import ... --users users.json`).",
        "- `facts.json`: what the script did (every act, its annotator, label, ground truth; what was cancelled,",
        "  deleted, drafted and relabelled). Tests derive their expectations from it, not from the importers.",
        "- `PROJECT/config.xml`: the labeling config; `PROJECT/round1/` exports before the reviewer's relabel,",
        "  `PROJECT/round2/` after. One file per format the export API offered (`json.json`, `json_min.json`,",
        "  `csv.csv`, `tsv.tsv`, `coco.zip`, `yolo.zip`, `yolo_obb.zip`, `voc.zip`) and `snapshot.json`, the",
        "  snapshot export with full user and prediction objects.",
        "",
        "## People",
        "",
        "| Who | User id | Email | Display name |",
        "|---|---|---|---|",
        *[f"| {who} | {u['id']} | {u['email']} | {u['name']} |" for who, u in facts["users"].items()],
        "",
        "a1 and a2 are two people with the same display name; the reviewer only edits others' annotations",
        "(`updated_by`), so they are never an annotator.",
        "",
        "## Projects",
    ]
    for kind, project in facts["projects"].items():
        acts = [a for e in project["annotations"].values() for a in e["acts"]]
        cancelled = sum(a["was_cancelled"] for a in acts)
        lines += [
            "",
            f"### {kind}: {project['title']} (project {project['project_id']})",
            "",
            f"- tasks: {project['tasks']} (each with one model prediction: {project['predictions']} predictions)",
            f"- annotations in the JSON exports: {len(acts)} ({cancelled} cancelled); in JSON_MIN and CSV: "
            f"{len(acts) - cancelled}",
            f"- tasks without annotations: {sum(1 for e in project['annotations'].values() if not e['acts'])}",
            f"- ground-truth annotation ids: {', '.join(map(str, project['ground_truth'])) or 'none'}",
            f"- cancelled (skipped): {_listed(project['cancelled'], 'annotation_id')}",
            f"- deleted: {_listed(project['deleted'], 'annotation_id')}",
            f"- drafts (never submitted): {_listed(project['drafts'], 'draft_id')}",
            f"- annotations made from a prediction (`parent_prediction`): "
            f"{', '.join(map(str, project['with_parent_prediction'])) or 'none'}",
            f"- export formats offered: {', '.join(project['formats'])}",
            f"- relabelled by the reviewer in round 2 ({len(project['relabelled'])}):",
            *[f"  - {c['task']}: annotation {c['annotation_id']} by {c['annotator']}: {c['before']} -> {c['after']}"
              for c in project["relabelled"]],
        ]
    return "\n".join(lines) + "\n"


def _listed(items: list[dict[str, Any]], id_field: str) -> str:
    return ", ".join(f"{i['task']} ({id_field.replace('_', ' ')} {i[id_field]}, by {i['annotator']})"
                     for i in items) or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description="Make the Label Studio fixtures with a real server.")
    parser.add_argument("out", type=Path, help="Folder to write (e.g. tests/fixtures/label-studio).")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    try:
        with LabelStudioServer() as ls:
            print(f"label-studio up at {ls.url}", file=sys.stderr)
            facts = make_fixtures(args.out, ls, args.seed)
    except LabelStudioError as exc:
        sys.exit(f"label_studio_fixtures: {exc}")
    print(json.dumps({k: (v["tasks"], len(v["relabelled"])) for k, v in facts["projects"].items()}))


if __name__ == "__main__":
    main()
