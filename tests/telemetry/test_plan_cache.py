"""The parsed-plan cache of telemetry.plan_store: pages read every van's plan on each
request, so a fleet's plans are each parsed once (not once per request), the least
recently used is forgotten first, and a changed plan is never served stale."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from telemetry import plan_store
from telemetry.config import default_config
from telemetry.plan import (
    Plan,
    PlanException,
    change_plan,
    clear_cache,
    current_plan,
    new_id,
    save_plan,
    stored_plan,
)
from telemetry.store import Store

CFG = default_config()
MON = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 8, tzinfo=UTC).timestamp()


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def st(tmp_path):
    s = Store(tmp_path / "plans.db", van="van-000", tz=CFG.timezone)
    yield s
    s.close()


@pytest.fixture
def parses(monkeypatch) -> Counter:
    """How often each van's plan is parsed (``Plan.from_json`` calls by van)."""
    calls: Counter = Counter()
    original = Plan.from_json

    def counting(text, *, van=None):
        calls[van] += 1
        return original(text, van=van)

    monkeypatch.setattr(Plan, "from_json", staticmethod(counting))
    return calls


def fleet(st, n: int) -> list[str]:
    vans = [f"van-{i:03d}" for i in range(n)]
    for v in vans:
        assert save_plan(st, Plan.from_tour(v, CFG.tour).changed(now=NOW))
    return vans


def test_a_fleet_of_200_plans_read_twice_is_parsed_once_each(st, parses):
    vans = fleet(st, 200)
    first = [stored_plan(st, v) for v in vans]
    second = [current_plan(st, v, CFG.tour) for v in vans]  # the pages' way in
    assert parses == Counter({v: 1 for v in vans})
    assert second == first
    assert [p.van for p in second] == vans and {p.version for p in second} == {1}


def test_the_least_recently_used_plan_is_forgotten_first(st, parses, monkeypatch):
    monkeypatch.setattr(plan_store, "_CACHE_MAX", 3)
    a, b, c, d = fleet(st, 4)
    for v in (a, b, c, a, d):  # a read again: b is now the least recently used
        stored_plan(st, v)
    assert parses == Counter({a: 1, b: 1, c: 1, d: 1})
    stored_plan(st, a)  # still remembered
    assert parses[a] == 1
    stored_plan(st, b)  # forgotten, parsed again
    assert parses[b] == 2


def test_a_changed_plan_is_parsed_again_and_replaces_the_older_one(st, parses):
    (van,) = fleet(st, 1)
    assert stored_plan(st, van).version == 1
    for i in range(3):
        day = MON + timedelta(days=i)
        closed = PlanException(new_id(), "closed", day, date_to=day, reason="Urlaub")
        changed = change_plan(st, van, lambda p, ex=closed: p.with_exception(ex, now=NOW))
        assert stored_plan(st, van) == changed
    assert stored_plan(st, van).version == 4
    assert parses[van] == 4  # once per version; the last read again was remembered
    assert list(plan_store._CACHE) == [van]  # one entry per van, not one per version


def test_the_same_van_in_two_stores_gets_each_store_s_plan(tmp_path, parses):
    one = Store(tmp_path / "one.db", van="van-000", tz=CFG.timezone)
    two = Store(tmp_path / "two.db", van="van-000", tz=CFG.timezone)
    try:
        base = Plan.from_tour("van-000", CFG.tour)
        save_plan(one, base.changed(now=NOW))
        save_plan(two, base.changed(now=NOW).changed(now=NOW))
        for _ in range(2):
            assert stored_plan(one, "van-000").version == 1
            assert stored_plan(two, "van-000").version == 2
    finally:
        one.close()
        two.close()
