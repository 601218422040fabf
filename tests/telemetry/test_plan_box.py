"""The box and its plan (firmware/box.py wiring): a real Box with a private mosquitto
receives the retained plan through its Publisher's ``on_plan``, stores it, gives it to
stop detection; a malformed plan is dead-lettered and changes nothing; after a restart
without any broker the box works with the last plan it got."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import date, timedelta

import paho.mqtt.client as mqtt
import pytest
from gpiozero.pins.mock import MockFactory
from paho.mqtt.enums import CallbackAPIVersion

from firmware.box import Box
from telemetry import deadletter
from telemetry.config import default_config
from telemetry.plan import Plan, PlanException, new_id, stored_plan

VAN = "jungregio-1"
EDEM = "edemissen-schulzentrum"


def wait_for(cond: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def retain(port: int, topic: str, payload: str | bytes) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"hub-{time.monotonic_ns()}")
    c.connect("127.0.0.1", port, keepalive=10)
    c.loop_start()
    c.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
    c.loop_stop()
    c.disconnect()


def cfg_for(tmp_path, port: int | None):
    return default_config(
        {
            "database": {"path": str(tmp_path / "box.db")},
            "sensor": {"kind": "none"},
            "mqtt": {"enabled": port is not None, "host": "127.0.0.1", "port": port or 1,
                     "rate_limit": 5000.0, "keepalive": 10},
        }
    )  # fmt: skip


def plan_v(n: int) -> Plan:
    p = Plan.from_tour(VAN, default_config().tour)
    for i in range(n):
        day = date(2026, 11, 23) + timedelta(weeks=i)
        c = PlanException(new_id(), "cancel", day, stop_key=EDEM, reason=f"Grund {i}")
        p = p.with_exception(c, now=float(i + 1))
    return p


@pytest.fixture
def running_box(tmp_path, broker):
    box = Box(cfg_for(tmp_path, broker.port), pin_factory=MockFactory(),
              gps_url=str(tmp_path / "no-gps"), web=False)  # fmt: skip
    box.start()
    yield box
    box.stop()


def test_the_box_stores_the_retained_plan_and_detects_stops_by_it(running_box, broker):
    box = running_box
    assert box.detector is not None and box.detector._plan.version == 0  # the TOML tour
    topic = f"vanbox/{VAN}/plan"
    retain(broker.port, topic, plan_v(2).to_json())
    wait_for(lambda: (p := stored_plan(box.store, VAN)) is not None and p.version == 2,
             "the plan stored")  # fmt: skip
    wait_for(lambda: box.detector._plan is not None and box.detector._plan.version == 2,
             "the detector to use it")  # fmt: skip
    # a malformed plan: kept aside as a dead letter, the stored plan stays
    bad = json.loads(plan_v(3).to_json())
    bad["exceptions"][0]["delay_min"] = 5000
    bad["exceptions"][0]["kind"] = "delay"
    retain(broker.port, topic, json.dumps(bad))
    wait_for(lambda: deadletter.count(box.store, "mqtt") == 1, "the dead letter")
    assert stored_plan(box.store, VAN).version == 2 and box.detector._plan.version == 2
    dl = deadletter.recent(box.store)[0]
    assert dl.topic == topic and "delay_min" in dl.reason
    # an older plan after a newer one changes nothing
    retain(broker.port, topic, plan_v(1).to_json())
    time.sleep(0.5)
    assert stored_plan(box.store, VAN).version == 2


def test_after_a_restart_offline_the_box_uses_the_last_plan(tmp_path, broker):
    box = Box(cfg_for(tmp_path, broker.port), pin_factory=MockFactory(),
              gps_url=str(tmp_path / "no-gps"), web=False)  # fmt: skip
    box.start()
    try:
        retain(broker.port, f"vanbox/{VAN}/plan", plan_v(1).to_json())
        wait_for(lambda: stored_plan(box.store, VAN) is not None, "the plan stored")
    finally:
        box.stop()
    broker.stop()
    offline = Box(cfg_for(tmp_path, None), pin_factory=MockFactory(),
                  gps_url=str(tmp_path / "no-gps"), web=False)  # fmt: skip
    offline.start()
    try:
        assert offline.publisher is None
        assert offline.detector._plan == stored_plan(offline.store, VAN)
        assert offline.detector._plan.version == 1
    finally:
        offline.stop()
