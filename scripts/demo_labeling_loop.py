"""The labeling loop of the demo (``scripts/demo.sh`` calls it): a real Label Studio server, two
annotators, ``registry sync label-studio`` (first, no change, after an update and a delete), a webhook
that syncs by itself, and ``registry requeue`` of the samples a model gets wrong.

Run from a directory holding a registry (``REGISTRY_HOME`` or the current one). Without Label Studio's
venv it says how to get it and exits 0, so the rest of the demo goes on.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.label_studio_fixtures import Run, sign_up  # noqa: E402
from scripts.label_studio_server import LS_VERSION, LabelStudioServer, venv_path  # noqa: E402

CONFIG = ('<View><Text name="text" value="$text"/><Choices name="label" toName="text">'
          '<Choice value="stop"/><Choice value="yield"/></Choices></View>')


def run(*args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    print(f"\n\033[1m$ {' '.join(args)}\033[0m", flush=True)
    done = subprocess.run(list(args), env={**os.environ, **(env or {})}, text=True, capture_output=True)
    print(done.stdout + done.stderr, end="", flush=True)
    if check and done.returncode != 0:
        sys.exit(f"demo step failed with exit code {done.returncode}")
    return done.stdout


def annotate(people: Run, who: str, task: int, label: str) -> int:
    body = {"result": [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]}
    return int(people.api("POST", f"/api/tasks/{task}/annotations/", body, who)["id"])


def main() -> None:
    if not (venv_path() / "bin" / "label-studio").is_file():
        print(f"Label Studio {LS_VERSION} is not installed, so the labeling loop is skipped. To try it: "
              "python scripts/label_studio_server.py --ensure-venv (or bash scripts/setup.sh), then run "
              "this demo again. See docs/labeling-loop.md.")
        return
    os.environ["USE_DEFAULT_BANNED_SUBNETS"] = "false"  # its webhook calls the registry on 127.0.0.1
    with LabelStudioServer() as ls:
        people = Run(ls, random.Random(7))
        for who in ("a1", "a3"):
            sign_up(people, who)
        pid = ls.api("POST", "/api/projects/", {"title": "sign review (live)", "label_config": CONFIG})["id"]
        ls.api("POST", f"/api/projects/{pid}/import", [{"image": f"img-{i:03d}.jpg", "text": f"sign {i}"}
                                                        for i in range(6)])
        tasks = {t["data"]["image"]: t["id"] for t in ls.api("GET", f"/api/tasks/?project={pid}")["tasks"]}
        env = {"LABEL_STUDIO_API_KEY": ls.token}
        sync = ["registry", "sync", "label-studio", "live-signs", "--url", ls.url, "--project", str(pid),
                "--key", "image"]
        acts = {}
        for who, label in (("a1", "stop"), ("a3", "yield")):
            for image in list(tasks)[:4]:
                acts[who, image] = annotate(people, who, tasks[image], label)
        print(f"Label Studio {LS_VERSION} at {ls.url}: project {pid}, 6 tasks, 8 annotations by two annotators")
        run(*sync, "--guideline-version", "2026-12", env=env)
        run(*sync, env=env)  # nothing changed: no snapshot
        fix = {"result": [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["stop"]}}]}
        people.api("PATCH", f"/api/annotations/{acts['a3', 'img-000.jpg']}/", fix, "a3")
        ls.api("DELETE", f"/api/tasks/{tasks['img-005.jpg']}/")
        print("an annotator corrected img-000.jpg and a manager deleted task img-005.jpg")
        run(*sync, env=env)
        run("registry", "diff", "live-signs@main~1", "live-signs@main", "--labels", "--rows", "5")
        run("registry", "audit", "log", "--action", "snapshot.sync")

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = subprocess.Popen(["registry", "serve", "--port", str(port)], env={**os.environ, **env},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(3)
            run(*sync, "--register-webhook", f"http://127.0.0.1:{port}", env=env)
            annotate(people, "a1", tasks["img-004.jpg"], "yield")
            print("a1 annotated img-004.jpg; the webhook syncs it (waiting for the snapshot)")
            for _ in range(60):
                logged = subprocess.run(["registry", "log", "live-signs", "--json"], capture_output=True, text=True)
                if len(json.loads(logged.stdout or "[]")) >= 3:
                    break
                time.sleep(2)
            run("registry", "log", "live-signs", "--limit", "2")
        finally:
            server.terminate()
            server.wait(timeout=20)
        Path("sign-model-3.csv").write_text("image,text,label,pred,score\n" + "".join(
            f"new-{i:03d}.jpg,sign {i},{'stop' if i % 2 else 'yield'},{'yield' if i % 3 else 'stop'},{0.5 + i / 20}\n"
            for i in range(8)))
        run("registry", "dataset", "create", "sign-model-3", "--key", "image")
        run("registry", "commit", "sign-model-3", "sign-model-3.csv", "-m", "model 3 predictions on new crops")
        requeue = ["registry", "requeue", "sign-model-3@main", "--to", "label-studio", "--url", ls.url, "--project",
                   str(pid), "--where", "label != pred", "--prediction-column", "pred", "--score-column", "score",
                   "--model-version", "sign-model-3"]
        run(*requeue, "--dry-run", env=env)
        run(*requeue, env=env)
        run("registry", "audit", "log", "--action", "labeling.requeue")

if __name__ == "__main__":
    main()
