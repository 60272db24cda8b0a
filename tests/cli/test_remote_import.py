"""``registry import`` and the provenance commands through a server print what they print locally.

Uses the two-homes fixture of :mod:`tests.cli.test_remote_cli` with the real Label Studio exports: the
text output of an import (which once failed with ``AttributeError: commit`` after the server had
committed), history, blame and the label diff, and errors that name the user's file, never the
server's spool folder.
"""

from __future__ import annotations

import shutil

from tests.cli.test_remote_cli import Pair, pair  # noqa: F401  (the fixture)
from tests.support.label_studio_facts import FIXTURES


def test_label_studio_imports_and_provenance_through_a_server(pair: Pair) -> None:  # noqa: F811
    w = pair.work
    for round_ in (1, 2):
        shutil.copy(FIXTURES / "classification" / f"round{round_}" / "json.json", w / f"round{round_}.json")
    shutil.copy(FIXTURES / "users.json", w / "users.json")
    shutil.copy(FIXTURES / "detection" / "round1" / "yolo.zip", w / "yolo.zip")
    shutil.copy(FIXTURES / "detection" / "round1" / "csv.csv", w / "boxes.csv")
    local, _ = pair.both("import", "label-studio", "animals", str(w / "round1.json"), "--key", "sample",
                         "--users", str(w / "users.json"))
    assert "36 samples" in local.stderr
    pair.both("import", "label-studio", "animals", str(w / "round2.json"), "--key", "sample", "--users",
              str(w / "users.json"), "--json")
    pair.both("import", "yolo", "street", str(w / "yolo.zip"))
    pair.both("import", "label-studio", "boxes", str(w / "boxes.csv"), "--json")
    for args in (("history", "animals", "cls-003"), ("blame", "animals"), ("diff", "animals@main~1", "animals@main",
                                                                            "--labels")):
        pair.both(*args)
        local, _ = pair.both(*args, "--json")
        assert "@example." in local.stdout  # annotators shown with their email


def test_remote_import_errors_name_the_users_file(pair: Pair) -> None:  # noqa: F811
    w = pair.work
    data = (FIXTURES / "classification" / "round1" / "json.json").read_bytes()
    (w / "cut.json").write_bytes(data[: len(data) // 2])
    local, remote = pair.both("import", "label-studio", "cut", str(w / "cut.json"), code=2)
    assert str(w / "cut.json") in remote.stderr and "registry-upload-" not in remote.stderr
    (w / "users.json").write_text("[1, 2]")
    local, remote = pair.both("import", "label-studio", "users", str(FIXTURES / "classification" / "round1" /
                                                                     "json_min.json"), "--users",
                              str(w / "users.json"), code=2)
    assert str(w / "users.json") in remote.stderr and "registry-upload-" not in remote.stderr
    pair.both("log", "cut", code=2)
