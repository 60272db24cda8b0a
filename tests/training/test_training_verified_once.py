"""An object is hashed once per machine, not once per process: the readers a training job starts
(DataLoader workers, spawned or forked, other ranks, Ray tasks) receive the job's object source
pickled, and find the verified marker the first verification left while the file is untouched; a byte
flipped afterwards is still caught in every one of them."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from registry import Registry
from registry.snapshots.plan import build_plan
from registry.training.admission import VerifiedObjects, local_objects
from tests.support.hash_counting import COUNT_HASHES
from tests.support.training_support import churned

# A fresh process reading every object through the pickled source, counting the files it hashes.
READER = COUNT_HASHES + """
import pickle, sys
from pathlib import Path
objects, shas = pickle.loads(Path(sys.argv[1]).read_bytes())
try:
    for sha in shas:
        objects.path(sha)
except Exception as exc:
    print(type(exc).__name__, exc)
    sys.exit(3)
print(len(hashed))
"""


def _in_another_process(objects: VerifiedObjects, shas: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    state = tmp_path / "objects.pickle"
    state.write_bytes(pickle.dumps((objects, shas)))
    return subprocess.run([sys.executable, "-c", READER, str(state)], capture_output=True, text=True, timeout=120)


def test_a_second_process_finds_the_first_ones_verification(reg: Registry, tmp_path: Path) -> None:
    churned(reg)
    plan = build_plan(reg.ctx, "churn")
    objects = VerifiedObjects(local_objects(reg.ctx, plan))
    for sha in plan.objects:
        objects.path(sha)
    done = _in_another_process(objects, plan.objects, tmp_path)
    assert done.returncode == 0 and done.stdout.split() == ["0"], done.stdout + done.stderr

    victim = Path(reg.ctx.store.local_path(plan.objects[0]))
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    caught = _in_another_process(objects, plan.objects, tmp_path)
    assert caught.returncode == 3 and "VerifyFailed" in caught.stdout and plan.objects[0] in caught.stdout


def test_a_training_dataset_verifies_once_for_all_its_workers(reg: Registry, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from registry.training.torch import SnapshotDataset

    churned(reg)
    ds = SnapshotDataset("churn", registry=reg, batch_size=256)
    shas = ds.admission.plan.objects
    assert isinstance(ds.objects, VerifiedObjects)
    done = _in_another_process(ds.objects, shas, tmp_path)  # what a spawned worker or another rank does
    assert done.returncode == 0 and done.stdout.split() == ["0"], done.stdout + done.stderr
