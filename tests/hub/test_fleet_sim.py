"""Issue 17, item 4: the fleet simulator. Ten simulated vans for a few seconds into a
private mosquitto and a real hub: the hub stores exactly what they sent, each van ends
offline, and their tallies reconcile with nothing asked again. Its options are checked
at the boundary (Hypothesis)."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as s

from hub.fleet_sim import MAX_VANS, FleetSim, SimOptions, parse_broker
from hub.ingest import Hub
from hub.reconcile import Reconciler
from telemetry.errors import ConfigError
from telemetry.store import Store

ROOT = Path(__file__).resolve().parents[2]
TABLES = {"location": "positions", "footfall": "footfall", "checkin": "checkins"}


def wait_for(cond, what: str, timeout: float = 15.0) -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


@pytest.mark.mqtt
def test_ten_vans_reach_the_hub_exactly(broker, tmp_path):
    store = Store(tmp_path / "hub.db")
    hub = Hub(store, {"host": "127.0.0.1", "port": broker.port}, client_id="sim-hub",
              on_control=Reconciler(store))  # fmt: skip
    hub.start()
    sent: dict[str, set[str]] = {k: set() for k in TABLES}
    lock = threading.Lock()

    def on_send(van: str, kind: str, eid: str, t: float) -> None:
        with lock:
            sent[kind].add(eid)

    # 60x the real rates: a fix every 0.5 s parked, a tally every 5 s.
    sim = FleetSim(SimOptions(10, "127.0.0.1", broker.port, speed=60, seed=3), on_send=on_send)
    try:
        assert hub.wait_connected(10)
        sim.run_for(6.0)
        assert sim.errors == 0
        assert len(sent["location"]) >= 10 * 6  # every van, about every 0.5 s
        assert sent["footfall"] and sent["checkin"], dict(sim.sent)

        def stored(table: str) -> set[str]:
            return {r[0] for r in store.reader().execute(f"SELECT id FROM {table}")}  # noqa: S608

        wait_for(lambda: all(stored(TABLES[k]) == ids for k, ids in sent.items()),
                 "every event sent, and nothing else")  # fmt: skip
        vans = {r[0] for r in store.reader().execute("SELECT DISTINCT van FROM positions")}
        assert vans == {f"sim-{i:05d}" for i in range(10)}
        offline = "SELECT van FROM van_status WHERE status = 'offline'"
        wait_for(lambda: {r[0] for r in store.reader().execute(offline)} == vans, "all offline")
        assert sim.sent["tally"] >= 10
        asked = (
            store.reader()
            .execute("SELECT count(*) FROM delivery_hub WHERE asked_at IS NOT NULL")
            .fetchone()[0]
        )
        tallied = store.reader().execute("SELECT count(DISTINCT van) FROM delivery_hub")
        assert tallied.fetchone()[0] == 10 and asked == 0
    finally:
        hub.stop()
        store.close()


def test_the_command_refuses_bad_options_in_one_line():
    r = subprocess.run([sys.executable, "-m", "firmware.cli", "fleet-sim", "--vans", "0"],
                       cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 2 and r.stderr.strip().endswith("--vans 0: use 1..20000")


@given(s.text(max_size=30))
def test_parse_broker_takes_host_port_or_says_how(text):
    try:
        host, port = parse_broker(text)
    except ConfigError as e:
        assert "HOST:PORT" in str(e)
        return
    assert host and 1 <= port <= 65535


def test_parse_broker_bounds():
    assert parse_broker("hub.example.org:8883") == ("hub.example.org", 8883)
    assert parse_broker("localhost") == ("localhost", 1883)
    assert parse_broker("h:65535")[1] == 65535 and parse_broker("h:1")[1] == 1
    for bad in ("h:0", "h:65536", ":1883", "h:", "h:x", "h:18²", "h:١٨٨٣"):
        with pytest.raises(ConfigError):
            parse_broker(bad)


@given(
    vans=s.integers(-5, MAX_VANS + 5),
    speed=s.floats(allow_nan=True, allow_infinity=True),
    threads=s.integers(-1, 70),
)
def test_options_are_bounded(vans, speed, threads):
    ok = 1 <= vans <= MAX_VANS and math.isfinite(speed) and 0.01 <= speed <= 1000
    ok = ok and 1 <= threads <= 64
    try:
        SimOptions(vans, "h", 1883, speed=speed, threads=threads)
    except ConfigError:
        assert not ok
    else:
        assert ok
