"""Power cuts: a child process records events and publishes them; it is killed with
SIGKILL at random moments, 20 times. After each kill every event the child reported as
committed is in the database, ``PRAGMA integrity_check`` is ok, and the next child
resumes the outbox; in the end the subscriber has every committed event.
The retained status turns ``offline`` when the publishing process is killed."""

from __future__ import annotations

import importlib.util
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHILD = Path(__file__).with_name("_box_child.py")
_spec = importlib.util.spec_from_file_location("_box_child", CHILD)
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)

pytestmark = pytest.mark.mqtt

KILLS = 20
ROOT = Path(__file__).resolve().parents[2]


def spawn(mode: str, db: Path, port: int, ids: Path | None = None, **kw) -> subprocess.Popen:
    cmd = [sys.executable, str(CHILD), mode, "--db", str(db), "--port", str(port)]
    if ids is not None:
        cmd += ["--ids", str(ids)]
    for k, v in kw.items():
        cmd += [f"--{k}", str(v)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [x for x in path.read_text().split("\n") if x]


def committed_ids(db: Path) -> tuple[str, set[str], set[str]]:
    """(integrity_check, ids of every event row, event ids still in the outbox)."""
    conn = sqlite3.connect(db)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        ids = {
            r[0]
            for t in ("positions", "footfall", "checkins", "stop_visits")
            for r in conn.execute(f"SELECT id FROM {t}")
        }
        pending = {r[0] for r in conn.execute("SELECT event_id FROM outbox")}
    finally:
        conn.close()
    return check, ids, pending


def test_sigkill_20_times_loses_nothing_committed(tmp_path: Path, broker):
    db, ids_file = tmp_path / "box.db", tmp_path / "committed.txt"
    sub = helpers.Subscriber(broker.port)
    rng = random.Random(7)
    leftovers: set[str] = set()  # unsent at the previous kill
    resumed = 0
    try:
        for i in range(KILLS):
            before = len(lines(ids_file))
            child = spawn("record", db, broker.port, ids_file, seed=i)
            deadline = time.monotonic() + 30
            while len(lines(ids_file)) <= before + 5 and time.monotonic() < deadline:
                if child.poll() is not None:
                    pytest.fail(f"child {i} died: {child.stderr.read().decode()[-2000:]}")
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.3))  # a random moment during the writes
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
            child.stderr.close()
            reported = lines(ids_file)
            assert len(reported) > before + 5, f"child {i} recorded nothing"
            check, stored, pending = committed_ids(db)
            assert check == "ok", f"after kill {i}: {check}"
            missing = set(reported) - stored
            assert not missing, f"after kill {i}: {len(missing)} committed events lost"
            resumed += len(leftovers - pending)  # sent by this child, left by the last one
            leftovers = pending
        # The last child only publishes: the outbox drains, the subscriber has everything.
        drain = spawn("drain", db, broker.port)
        out, err = drain.communicate(timeout=90)
        assert drain.returncode == 0, err.decode()[-2000:]
        # the restarted children picked up what their killed predecessors left unsent
        assert resumed > 0
        check, stored, pending = committed_ids(db)
        assert check == "ok" and not pending
        assert set(lines(ids_file)) <= stored
        assert sub.wait_for(lambda s: s.ids() >= stored, timeout=30), (
            f"{len(stored - sub.ids())} of {len(stored)} committed events never arrived"
        )
        assert helpers.retained(broker.port, "vanbox/killvan/status") == "offline"
    finally:
        sub.close()


def test_status_turns_offline_when_the_box_is_killed(tmp_path: Path, broker):
    db, ids_file = tmp_path / "box.db", tmp_path / "committed.txt"
    child = spawn("record", db, broker.port, ids_file, keepalive=2)
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline and status != "online":
            status = helpers.retained(broker.port, "vanbox/killvan/status", timeout=1)
        assert status == "online"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        child.stderr.close()
    # The broker publishes the last will once it sees the connection gone (at the latest
    # 1.5 keepalives, 3 s, after the last packet).
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and status != "offline":
        status = helpers.retained(broker.port, "vanbox/killvan/status", timeout=1)
    assert status == "offline"
