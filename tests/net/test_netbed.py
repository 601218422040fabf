"""The van on a mobile link (deploy/netbed.py): two network namespaces, the LTE profile
and one silent blackout, with the real publisher, mosquitto and hub (about a minute).

Skips with the reason where namespaces are not allowed (not root, no iproute2...)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from netbed_import import load  # noqa: E402

netbed = load()
REASON = netbed.unavailable()
KEEPALIVE = 20


@pytest.fixture(scope="module")
def lte_blackout():
    if REASON:
        pytest.skip(f"netbed: {REASON}")
    sc = netbed.Scenario(
        profile="lte",
        keepalive=KEEPALIVE,
        speed=120.0,
        sim_seconds=3600.0,  # 30 s of wall time
        blackouts=[(8.0, 40.0)],  # longer than 1.5 keepalives: it must be noticed
        drain_timeout=60.0,
    )
    return netbed.run_scenario(sc)


def test_nothing_lost_and_nothing_twice(lte_blackout):
    r = lte_blackout
    assert sum(r["events"].values()) > 50, r["events"]
    assert r["events"]["footfall"] and r["events"]["positions"]
    assert not any(r["lost"].values()), r
    assert not any(r["stored_twice"].values()), r


def test_dead_link_noticed_and_link_back_quickly(lte_blackout):
    (o,) = lte_blackout["outages"]
    assert o["down_s"] >= 39
    # Not before TCP could know (the blackout is real and silent) and within 1.5 keepalives.
    assert 5.0 <= o["noticed_after_s"] <= 1.5 * KEEPALIVE, o
    assert o["reconnected_after_s"] is not None and o["reconnected_after_s"] <= 10.0, o
    # the central broker gives up on the box after 1.5 keepalives (mosquitto looks every
    # 5 s) and sends its last will
    assert o["central_noticed_after_s"] is not None
    assert KEEPALIVE <= o["central_noticed_after_s"] <= 1.5 * KEEPALIVE + netbed.BROKER_CHECK_S
    assert o["noticed_after_s"] < o["central_noticed_after_s"]  # the van knows first


def test_backlog_drained_by_priority(lte_blackout):
    assert lte_blackout["priority_ok"] is True


def test_bytes_on_the_wire(lte_blackout):
    r = lte_blackout
    assert r["wire"]["up_bytes"] > 0 and r["wire"]["down_bytes"] > 0
    day = r["bytes_per_day"]
    # every event payload crossed the link at least once, headers on top
    assert day["wire_per_payload_byte"] > 1.0
    assert 10_000 < day["total"] < 50_000_000
    assert netbed.result_ok(r)
