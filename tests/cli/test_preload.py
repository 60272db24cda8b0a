"""``registry preload`` (issue 21: every read-only command <= 0.3 s): a real preloaded server process on a
real Unix socket, real ``registry`` client processes (the console entry point, :mod:`registry.cli.launch`)
against a real home. Each command run through the server must print the same bytes on stdout and
stderr and end with the same status as the same command run in its own process, and the server's own
count must show it ran there (not a silent fallback).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from registry.cli.preload_client import command_word, private, receive, send
from registry.cli.preload_server import PRELOAD_MODULES, code_fingerprint
from tests.support.paths import ROOT

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="registry preload needs fork (Linux, macOS)")

LAUNCH = [sys.executable, "-m", "registry.cli.launch"]
IN_PROCESS = [sys.executable, "-m", "registry.cli.main"]


class Preloaded:
    """A home with two snapshots and a preloaded server on a socket of its own."""

    def __init__(self, root: Path, extra_env: dict[str, str] | None = None) -> None:
        self.root = root
        self.work = root / "work"
        self.work.mkdir()
        self.home = self.work / ".registry"
        self.socket = root / "run" / "p.sock"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("REGISTRY_FAILPOINT", "REGISTRY_PRELOAD", "REGISTRY_HOME", "REGISTRY_URL"))}
        self.env["REGISTRY_PRELOAD_SOCKET"] = str(self.socket)
        self.env.update(extra_env or {})

    def run(self, *args: str, preload: bool = True, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        full = {**self.env, **(env or {})}
        if not preload:
            full["REGISTRY_PRELOAD"] = "off"
        return subprocess.run([*LAUNCH, *args], cwd=cwd or self.work, env=full, capture_output=True, text=True,
                              timeout=120)

    def control(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*IN_PROCESS, "preload", *args, "--json"], cwd=self.work, env=self.env,
                              capture_output=True, text=True, timeout=120)

    def status(self) -> dict[str, object]:
        done = self.control("status")
        return json.loads(done.stdout)  # type: ignore[no-any-return]


def _built(root: Path, extra_env: dict[str, str] | None = None) -> Preloaded:
    setup = Preloaded(root, extra_env)
    (setup.work / "v1.csv").write_text("sample_id,label\n" + "".join(f"s{i},{i % 3}\n" for i in range(30)))
    (setup.work / "v2.csv").write_text("sample_id,label\n" + "".join(f"s{i},{i % 4}\n" for i in range(35)))
    for step in (["init"], ["dataset", "create", "ds", "--key", "sample_id"], ["commit", "ds", "v1.csv", "-m", "one"],
                 ["tag", "ds@main", "v1"], ["commit", "ds", "v2.csv", "-m", "two"]):
        assert setup.run(*step, preload=False).returncode == 0, step
    return setup


def _started(root: Path, extra_env: dict[str, str] | None = None) -> Preloaded:
    setup = _built(root, extra_env)
    started = setup.control("start", "--idle", "300")
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["started"] is True
    return setup


@pytest.fixture
def preloaded() -> Iterator[Preloaded]:
    root = Path(tempfile.mkdtemp(prefix="rp"))  # short: a Unix socket path has at most 107 bytes
    setup = _started(root)
    yield setup
    setup.control("stop")
    shutil.rmtree(root, ignore_errors=True)


SAME_BOTH_WAYS = [
    ["log", "ds"], ["log", "ds", "--oneline", "-n", "1"], ["show", "ds@v1"], ["diff", "ds@v1", "main"],
    ["diff", "ds@v1", "main", "--quiet"], ["diff", "ds@v1", "main", "--json"],
    ["export", "ds@v1", "-", "--format", "csv"],
    ["export", "ds@main", "-", "--format", "parquet"], ["verify"], ["audit", "log"], ["audit", "verify"],
    ["query", "SELECT count(*) AS n FROM snapshots"], ["lineage", "ds@main"],
    ["show", "nope@v1"], ["show", "nope@v1", "--json"], ["log", "ds", "--no-such-option"], ["query", "SELEC 1"],
    ["--help"],
]


def test_a_preloaded_command_prints_and_ends_exactly_as_in_its_own_process(preloaded: Preloaded) -> None:
    served = preloaded.status()["commands_served"]
    for args in SAME_BOTH_WAYS:
        there = subprocess.run([*LAUNCH, *args], cwd=preloaded.work, env=preloaded.env, capture_output=True,
                               timeout=120)
        here = subprocess.run([*LAUNCH, *args], cwd=preloaded.work, env={**preloaded.env, "REGISTRY_PRELOAD": "off"},
                              capture_output=True, timeout=120)
        assert (there.returncode, there.stdout, there.stderr) == (here.returncode, here.stdout, here.stderr), args
    assert {1, 2} <= {preloaded.run(*a).returncode for a in (["diff", "ds@v1", "main", "--quiet"], ["show", "x@v1"])}
    assert preloaded.status()["commands_served"] == served + len(SAME_BOTH_WAYS) + 2


def test_the_command_runs_in_the_callers_folder_with_the_callers_environment(preloaded: Preloaded) -> None:
    """The home is found from the caller's folder; the actor and a relative file come from the caller."""
    sub = preloaded.work / "deeper" / "still"
    sub.mkdir(parents=True)
    (sub / "v3.csv").write_text("sample_id,label\ns1,9\n")
    done = preloaded.run("commit", "ds", "v3.csv", "--mode", "upsert", "-m", "from a subfolder", cwd=sub,
                         env={"REGISTRY_ACTOR": "alice@example.com"})
    assert done.returncode == 0, done.stderr
    head = json.loads(preloaded.run("show", "ds@main", "--json", cwd=sub).stdout)
    assert head["author"] == "alice@example.com"
    assert head["message"] == "from a subfolder"
    elsewhere = preloaded.run("log", "ds", cwd=preloaded.root)
    assert elsewhere.returncode == 2 and "no registry home" in elsewhere.stderr


def test_files_a_preloaded_command_writes_follow_the_callers_umask(preloaded: Preloaded) -> None:
    for mask, expected in ((0o022, 0o644), (0o077, 0o600)):
        out = preloaded.work / f"export-{mask:o}.csv"
        script = (f"import os, runpy, sys; os.umask({mask}); sys.argv = ['registry', 'export', 'ds@v1', {str(out)!r}]; "
                  "runpy.run_module('registry.cli.launch', run_name='__main__')")
        done = subprocess.run([sys.executable, "-c", script], cwd=preloaded.work, env=preloaded.env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert out.stat().st_mode & 0o777 == expected


def test_commands_run_side_by_side(preloaded: Preloaded) -> None:
    expected = preloaded.run("diff", "ds@v1", "main", preload=False).stdout
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: preloaded.run("diff", "ds@v1", "main"), range(8)))
    assert {(r.returncode, r.stdout) for r in results} == {(0, expected)}


def test_a_command_killed_mid_commit_kills_the_caller_the_same_way_and_loses_nothing(preloaded: Preloaded) -> None:
    before = preloaded.run("log", "ds", "--json", preload=False).stdout
    (preloaded.work / "v4.csv").write_text("sample_id,label\ns1,7\n")
    killed = preloaded.run("commit", "ds", "v4.csv", "--mode", "upsert", "-m", "dies",
                           env={"REGISTRY_FAILPOINT": "commit:before-catalog-commit"})
    alone = preloaded.run("commit", "ds", "v4.csv", "--mode", "upsert", "-m", "dies", preload=False,
                          env={"REGISTRY_FAILPOINT": "commit:before-catalog-commit"})
    assert killed.returncode == alone.returncode == -signal.SIGKILL
    assert preloaded.run("log", "ds", "--json", preload=False).stdout == before
    assert preloaded.run("verify").returncode == 0


def _polling_sync(preloaded: Preloaded) -> subprocess.Popen[str]:
    """A command that runs until it is stopped: a Label Studio sync polling a server that is not there."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([*LAUNCH, "sync", "label-studio", "ds", "--url", f"http://127.0.0.1:{port}", "--project",
                             "1", "--key", "sample_id", "--every", "1s"], cwd=preloaded.work,
                            env={**preloaded.env, "LABEL_STUDIO_API_KEY": "k"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while preloaded.status()["commands_running"] != 1:
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    time.sleep(1.5)  # at least one failed cycle
    return proc


def test_ctrl_c_reaches_the_command(preloaded: Preloaded) -> None:
    proc = _polling_sync(preloaded)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert "sync failed" in err
    assert err.rstrip().endswith("stopped")  # the command's own KeyboardInterrupt handling ran
    assert proc.returncode == 0


def test_a_caller_that_goes_away_takes_its_command_with_it(preloaded: Preloaded) -> None:
    proc = _polling_sync(preloaded)
    proc.kill()
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while preloaded.status()["commands_running"]:
        assert time.monotonic() < deadline, "the orphaned command kept running"
        time.sleep(0.1)


def test_another_installation_is_refused_and_nothing_runs(preloaded: Preloaded) -> None:
    read_end, write_end = os.pipe()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(preloaded.socket))
            send(sock, {"protocol": 1, "install": "someone-else", "argv": ["init"], "cwd": str(preloaded.root),
                        "env": {}, "umask": 0o22, "streams": [{}, {}, {}]}, [read_end, write_end, write_end])
            answer, _ = receive(sock)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert answer == {"refused": "another installation or protocol"}
    assert not (preloaded.root / ".registry").exists()


def test_a_server_whose_code_changed_on_disk_takes_no_more_commands() -> None:
    """The registry package copied aside and run from there; one edit to it and the next command runs in its
    own process (same answer), and the server leaves, saying why."""
    root = Path(tempfile.mkdtemp(prefix="rs"))
    code = root / "code"
    shutil.copytree(ROOT / "registry", code / "registry", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "migrations", code / "migrations", ignore=shutil.ignore_patterns("__pycache__"))
    setup = _started(root, {"PYTHONPATH": str(code)})
    try:
        first = setup.run("log", "ds")
        assert first.returncode == 0 and setup.status()["commands_served"] == 1
        with open(code / "registry" / "cli" / "output.py", "a") as source:
            source.write("# edited after the server started\n")
        again = setup.run("log", "ds")
        assert (again.returncode, again.stdout) == (0, first.stdout)
        deadline = time.monotonic() + 30
        while setup.socket.exists():
            assert time.monotonic() < deadline, "the stale server did not leave"
            time.sleep(0.1)
        log = Path(f"{setup.socket}.log").read_text()
        assert "stopped after 1 commands: the installed code changed on disk" in log
    finally:
        setup.control("stop")
        shutil.rmtree(root, ignore_errors=True)


def test_auto_starts_one_for_the_next_command() -> None:
    root = Path(tempfile.mkdtemp(prefix="ra"))
    setup = _built(root, {"REGISTRY_PRELOAD": "auto"})
    try:
        expected = setup.run("log", "ds", preload=False)
        first = setup.run("log", "ds")  # runs here, and starts one
        assert (first.returncode, first.stdout) == (0, expected.stdout)
        deadline = time.monotonic() + 60
        while setup.control("status").returncode != 0:
            assert time.monotonic() < deadline, "auto did not start a preloaded process"
            time.sleep(0.1)
        second = setup.run("log", "ds")
        assert (second.returncode, second.stdout) == (0, expected.stdout)
        assert setup.status()["commands_served"] == 1
    finally:
        setup.control("stop")
        shutil.rmtree(root, ignore_errors=True)


def _at_a_terminal(setup: Preloaded, *args: str) -> tuple[int, str, str]:
    """Run ``registry args`` with stdin and stderr on a pseudo-terminal (as typed at a shell): exit status,
    stdout, and what reached the terminal."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([*LAUNCH, *args], cwd=setup.work, env=setup.env, stdin=slave, stdout=subprocess.PIPE,
                            stderr=slave)
    os.close(slave)
    out, _ = proc.communicate(timeout=120)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal's other end closed
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    return proc.returncode, out.decode(), seen.decode(errors="replace")


def test_at_a_terminal_the_first_command_starts_one_and_says_so() -> None:
    root = Path(tempfile.mkdtemp(prefix="rt"))
    setup = _built(root)
    try:
        expected = setup.run("log", "ds", preload=False).stdout
        piped = setup.run("log", "ds")  # a script or a pipe: nothing starts
        assert (piped.returncode, piped.stdout) == (0, expected) and "background" not in piped.stderr
        time.sleep(1)
        assert setup.control("status").returncode == 1
        code, out, terminal = _at_a_terminal(setup, "log", "ds")
        assert (code, out) == (0, expected)
        assert "started a background registry process" in terminal and "REGISTRY_PRELOAD=off" in terminal
        deadline = time.monotonic() + 60
        while setup.control("status").returncode != 0:
            assert time.monotonic() < deadline, "no preloaded process after a command at a terminal"
            time.sleep(0.1)
        code, out, terminal = _at_a_terminal(setup, "log", "ds")
        assert (code, out) == (0, expected) and "background" not in terminal
        assert setup.status()["commands_served"] == 1
    finally:
        setup.control("stop")
        shutil.rmtree(root, ignore_errors=True)


def test_stop_status_and_idle_exit(preloaded: Preloaded) -> None:
    status = preloaded.status()
    assert status["running"] is True and status["socket"] == str(preloaded.socket)
    again = json.loads(preloaded.control("start").stdout)
    assert again["started"] is False and again["pid"] == status["pid"]
    stopped = json.loads(preloaded.control("stop").stdout)
    assert stopped["stopped"] is True
    after = preloaded.control("status")
    assert after.returncode == 1 and json.loads(after.stdout)["running"] is False
    assert not preloaded.socket.exists()
    assert preloaded.run("log", "ds").returncode == 0  # nothing serves: the command runs in its own process
    short = preloaded.control("start", "--idle", "0.5")
    assert short.returncode == 0
    deadline = time.monotonic() + 30
    while preloaded.socket.exists():
        assert time.monotonic() < deadline, "the idle server did not exit"
        time.sleep(0.1)
    assert "stopped after 0 commands: idle for 0.5 s" in Path(f"{preloaded.socket}.log").read_text()


def test_a_dead_servers_socket_and_a_shared_folder_are_passed_over(tmp_path: Path) -> None:
    """A socket nobody listens on, or one in a folder others can enter, is not used; the command runs here."""
    private_folder = Path(tempfile.mkdtemp(prefix="rq"))
    dead = private_folder / "dead.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(dead))
    listener.close()
    assert private(dead)
    env = {**os.environ, "REGISTRY_PRELOAD_SOCKET": str(dead)}
    env.pop("REGISTRY_PRELOAD", None)
    done = subprocess.run([*LAUNCH, "--version"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "version" in done.stdout
    private_folder.chmod(0o755)
    assert not private(dead)
    shutil.rmtree(private_folder)


def test_the_command_word_skips_global_options_and_the_controls_are_never_forwarded() -> None:
    assert command_word(["--home", "h", "--author", "a", "log", "ds"]) == "log"
    assert command_word(["--json", "show", "x"]) == "show"
    assert command_word(["--home", "serve"]) is None


def test_the_fingerprint_follows_the_source_files(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    (package / "sub" / "b.py").write_text("y = 2\n")
    first = code_fingerprint(package)
    assert code_fingerprint(package) == first
    (package / "sub" / "b.py").write_text("y = 22\n")
    assert code_fingerprint(package) != first


def test_every_preloaded_module_imports() -> None:
    import importlib

    optional = {"duckdb", "pyarrow", "numpy"}
    for name in PRELOAD_MODULES:
        if name.split(".")[0] not in optional:
            importlib.import_module(name)


def test_the_installation_key_follows_what_decides_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.cli.preload_client import install_key

    monkeypatch.delenv("PYTHONPATH", raising=False)
    plain = install_key()
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    assert install_key() != plain
    monkeypatch.setattr(sys, "executable", "/another/python")
    assert install_key() not in {plain}


def test_two_frames_waiting_are_read_one_at_a_time() -> None:
    """The server's "started" and "ended" frames both wait in the socket when a command ends before its client
    reads (``--help`` on a loaded machine: seen in CI as "the preloaded registry process went away"); the
    first read must leave the second frame, and the descriptors stay with the first."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with ours, theirs:
        theirs.settimeout(5)
        read_end, write_end = os.pipe()
        send(ours, {"pid": 7, "pad": "x" * 70_000}, [read_end])  # longer than one 64 KiB read
        send(ours, {"exit": 0})
        first, fds = receive(theirs, max_fds=3)
        assert first is not None and first["pid"] == 7 and len(fds) == 1
        assert receive(theirs) == ({"exit": 0}, [])
        ours.close()
        assert receive(theirs) == (None, [])
        for fd in (*fds, read_end, write_end):
            os.close(fd)
