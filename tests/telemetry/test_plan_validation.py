"""Bad plans are refused with a clear message naming the field (telemetry.errors.PlanError)
and thresholds hold just above and below: overlapping visits, an end before its start, a
stop outside the Landkreis Peine, an unknown stop key, a delay outside 1..600 minutes, a
closed period ending before it starts, absurd JSON. Hypothesis: whatever arrives as a
plan payload is either a Plan or a PlanError, never another exception."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from telemetry.config import MUNICIPALITIES, default_config
from telemetry.errors import PlanError, VanboxError
from telemetry.plan import (
    LANDKREIS_BBOX,
    MAX_JSON,
    Plan,
    PlanException,
    PlanStop,
    in_landkreis,
    new_id,
)

VAN = "jungregio-1"
MON = date(2026, 11, 23)
EDEM = "edemissen-schulzentrum"


@pytest.fixture
def base() -> Plan:
    return Plan.from_tour(VAN, default_config().tour)


def stop(key="neu", start=(10, 0), end=(12, 0), days=(0,), lat=52.30, lon=10.20) -> PlanStop:
    return PlanStop(key, key.title(), "Peine", lat, lon, 150.0, days, dtime(*start), dtime(*end))


def refused(fn, *words: str) -> str:
    with pytest.raises(PlanError) as e:
        fn()
    msg = str(e.value)
    for w in words:
        assert w in msg, msg
    assert isinstance(e.value, VanboxError)
    return msg


def test_overlapping_template_stops_are_refused_touching_ones_not(base):
    # Monday: Peine 10:00-13:00. A stop from 12:59 overlaps; one from 13:00 does not.
    refused(lambda: base.with_stop(stop(start=(12, 59), end=(14, 0))), "overlap", "Peine")
    ok = base.with_stop(stop(start=(13, 0), end=(14, 0)))
    assert ok.stop("neu") is not None
    # another weekday never overlaps
    assert base.with_stop(stop(start=(10, 0), end=(13, 0), days=(6,))).version == 1


def test_an_extra_or_a_move_overlapping_that_days_visits_is_refused(base):
    fest = PlanStop("fest", "Fest", "Peine", 52.32, 10.23)
    clash = PlanException(new_id(), "extra", MON, stop=fest, start=dtime(12, 0), end=dtime(15))
    refused(lambda: base.with_exception(clash), "2026-11-23", "overlap")
    fine = PlanException(new_id(), "extra", MON, stop=fest, start=dtime(13), end=dtime(14, 30))
    assert base.with_exception(fine).version == 1  # 13:00-14:30 fits between the two
    move = PlanException(new_id(), "move", MON, stop_key=EDEM, new_date=MON,
                         start=dtime(12, 30), end=dtime(14))  # fmt: skip
    refused(lambda: base.with_exception(move), "overlap")


def test_an_end_before_its_start_is_refused(base):
    refused(lambda: base.with_stop(stop(start=(14, 0), end=(13, 0))), "stops[", ".end")
    refused(lambda: base.with_stop(stop(start=(14, 0), end=(14, 0))), ".end")
    assert base.with_stop(stop(start=(14, 0), end=(14, 1), days=(6,))).version == 1
    bad = PlanException(new_id(), "move", MON, stop_key=EDEM, new_date=MON + timedelta(days=1),
                        start=dtime(9), end=dtime(8))  # fmt: skip
    refused(lambda: base.with_exception(bad), "exceptions[0].end")


def test_a_stop_outside_the_landkreis_is_refused():
    s, w, n, e = LANDKREIS_BBOX
    # the margin is about 15 km around the municipality centres
    north = max(p[0] for p in MUNICIPALITIES.values())
    assert 0.12 < n - north < 0.15
    p = Plan.from_tour(VAN, ())
    inside = stop(lat=n - 0.001, lon=10.25, days=(6,))
    outside = stop(lat=n + 0.001, lon=10.25, days=(6,))
    assert in_landkreis(inside.lat, inside.lon) and not in_landkreis(outside.lat, outside.lon)
    assert p.with_stop(inside).version == 1
    refused(lambda: p.with_stop(outside), "outside the Landkreis", "lat/lon")
    berlin = stop(lat=52.52, lon=13.40, days=(6,))
    refused(lambda: p.with_stop(berlin), "outside the Landkreis")
    fest = PlanStop("fest", "Fest", "Berlin", 52.52, 13.40)
    bad = PlanException(new_id(), "extra", MON, stop=fest, start=dtime(20), end=dtime(21))
    refused(lambda: p.with_exception(bad), "exceptions[0].place", "Landkreis")


def test_an_unknown_stop_key_or_a_day_without_that_visit_is_refused(base):
    bad = PlanException(new_id(), "cancel", MON, stop_key="gibt-es-nicht")
    refused(lambda: base.with_exception(bad), "gibt-es-nicht")
    # Edemissen is served on Mondays only: a Tuesday cancel names the day
    tue = PlanException(new_id(), "cancel", MON + timedelta(days=1), stop_key=EDEM)
    refused(lambda: base.with_exception(tue), "2026-11-24")
    # the same through the JSON boundary (no day check there: an old exception may
    # outlive a weekday change, but never its stop)
    body = json.loads(base.to_json())
    body["exceptions"] = [{"id": new_id(), "kind": "cancel", "date": "2026-11-23",
                           "stop": "gibt-es-nicht", "reason": ""}]  # fmt: skip
    refused(lambda: Plan.from_json(json.dumps(body)), "exceptions[0].stop", "unknown stop")


@pytest.mark.parametrize("minutes,ok", [(0, False), (1, True), (209, True), (210, False),
                                        (600, False), (601, False), (-5, False)])  # fmt: skip
def test_delay_bounds(base, minutes, ok):
    # Edemissen runs 14:30-18:00 (210 min): a delay must leave some of the visit.
    d = PlanException(new_id(), "delay", MON, stop_key=EDEM, delay_min=minutes)
    if ok:
        assert base.with_exception(d).exceptions[0].delay_min == minutes
    else:
        refused(lambda: base.with_exception(d), "delay_min")


def test_delay_bounds_600_on_a_long_visit():
    long_day = Plan.from_tour(VAN, ()).with_stop(stop("lang", (6, 0), (23, 0), days=(0,)))
    for m, ok in ((600, True), (601, False)):
        d = PlanException(new_id(), "delay", MON, stop_key="lang", delay_min=m)
        if ok:
            assert long_day.with_exception(d).version == 2
        else:
            refused(lambda d=d: long_day.with_exception(d), "1 to 600")


def test_a_closed_period_ending_before_it_starts_is_refused(base):
    bad = PlanException(new_id(), "closed", MON, date_to=MON - timedelta(days=1))
    refused(lambda: base.with_exception(bad), "date_to", "ends before it starts")
    one_day = PlanException(new_id(), "closed", MON, date_to=MON, reason="Betriebsausflug")
    assert base.with_exception(one_day).version == 1
    long = PlanException(new_id(), "closed", MON, date_to=MON + timedelta(days=366))
    refused(lambda: base.with_exception(long), "at most a year")


def test_an_unknown_van_is_refused(base):
    refused(lambda: Plan.from_json(base.to_json(), van="other-van"), "van", "other-van")
    body = json.loads(base.to_json()) | {"van": "Böser Bus!"}
    refused(lambda: Plan.from_json(json.dumps(body)), "van")


def test_public_texts_are_bounded_and_clean(base):
    for reason, ok in (("x" * 200, True), ("x" * 201, False), ("a\x00b", False),
                       ("Zeile\nzwei", False), ("wegen Krankheit 🤒", True)):  # fmt: skip
        c = PlanException(new_id(), "cancel", MON, stop_key=EDEM, reason=reason)
        if ok:
            assert base.with_exception(c).exceptions[0].reason == reason
        else:
            refused(lambda c=c: base.with_exception(c), "reason")


@pytest.mark.parametrize(
    "patch,field",
    [
        ({"version": -1}, "version"),
        ({"version": True}, "version"),
        ({"updated": "gestern"}, "updated"),
        ({"stops": {}}, "stops"),
        ({"stops": [{"key": "x"}]}, "stops[0]"),
        ({"exceptions": [{"kind": "vanish"}]}, "exceptions[0].kind"),
        ({"exceptions": [{"kind": "cancel", "id": "not-a-uuid"}]}, "exceptions[0].id"),
    ],
)
def test_bad_json_names_the_field(base, patch, field):
    body = json.loads(base.to_json()) | patch
    refused(lambda: Plan.from_json(json.dumps(body)), field)


def test_junk_payloads_are_plan_errors():
    for junk in (b"", b"\xff\xfe", b"[]", b"null", b"{", b"1e999", "{}", "[" * 5000 + "]" * 5000,
                 b" " * (MAX_JSON + 1)):  # fmt: skip
        with pytest.raises(PlanError):
            Plan.from_json(junk)


def test_a_refused_change_leaves_the_plan_as_it_was(base):
    before = base.to_json()
    with pytest.raises(PlanError):
        base.with_stop(stop(start=(12, 59), end=(14, 0)))
    assert base.to_json() == before  # frozen: nothing to undo, nothing half-changed


# --- fuzzing the JSON boundary ---------------------------------------------------------

_scalars = hs.one_of(
    hs.none(), hs.booleans(), hs.integers(-(2**60), 2**60),
    hs.floats(allow_nan=True, allow_infinity=True), hs.text(max_size=30),
    hs.sampled_from(["2026-11-23", "2026-02-30", "14:30", "24:00", "mon", "cancel", "extra",
                     "closed", "move", "delay", "jungregio-1", new_id(), EDEM]),
)  # fmt: skip
_json = hs.recursive(
    _scalars,
    lambda kids: hs.one_of(
        hs.lists(kids, max_size=4),
        hs.dictionaries(
            hs.sampled_from(
                [
                    "van",
                    "version",
                    "updated",
                    "stops",
                    "exceptions",
                    "key",
                    "name",
                    "municipality",
                    "lat",
                    "lon",
                    "radius_m",
                    "weekdays",
                    "start",
                    "end",
                    "id",
                    "kind",
                    "date",
                    "stop",
                    "reason",
                    "delay_min",
                    "new_date",
                    "place",
                    "date_from",
                    "date_to",
                ]
            ),
            kids,
            max_size=8,
        ),  # fmt: skip
    ),
    max_leaves=30,
)


def _mutations(base: Plan):
    body = json.loads(base.to_json())
    return hs.tuples(
        hs.sampled_from(["van", "version", "updated", "stops", "exceptions"]), _json
    ).map(lambda kv: json.dumps(body | {kv[0]: kv[1]}, allow_nan=True))


def _must_be_plan_or_planerror(text) -> None:
    try:
        plan = Plan.from_json(text)
    except PlanError:
        return
    # what is accepted round-trips exactly and keeps the rules
    assert Plan.from_json(plan.to_json()) == plan
    cfg = default_config()
    plan.next_visits(datetime(2026, 11, 23, 9, tzinfo=UTC), cfg.tz, 3)
    plan.visits_between(date(2026, 11, 1), date(2027, 1, 31), cfg.tz)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hs.one_of(_json.map(lambda v: json.dumps(v, allow_nan=True)), hs.binary(max_size=200)))
def test_fuzz_random_payloads(text):
    _must_be_plan_or_planerror(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hs.data())
def test_fuzz_mutated_real_plans(data):
    base = Plan.from_tour(VAN, default_config().tour)
    _must_be_plan_or_planerror(data.draw(_mutations(base)))


_exc = hs.fixed_dictionaries(
    {
        "id": hs.just(new_id()) | hs.text(max_size=5),
        "kind": hs.sampled_from(["cancel", "delay", "move", "extra", "closed", "x"]),
        "date": hs.dates(date(1990, 1, 1), date(2110, 1, 1)).map(str),
        "date_from": hs.dates(date(2020, 1, 1), date(2030, 1, 1)).map(str),
        "date_to": hs.dates(date(2020, 1, 1), date(2030, 1, 1)).map(str),
        "new_date": hs.dates(date(2020, 1, 1), date(2030, 1, 1)).map(str),
        "stop": hs.sampled_from([EDEM, "peine-marktplatz", "nope", ""]),
        "delay_min": hs.integers(-5, 700),
        "start": hs.times().map(lambda t: t.strftime("%H:%M")),
        "end": hs.times().map(lambda t: t.strftime("%H:%M")),
        "reason": hs.text(max_size=210),
        "place": hs.fixed_dictionaries({
            "key": hs.sampled_from(["fest", "Fest!", EDEM]),
            "name": hs.text(max_size=90), "municipality": hs.just("Peine"),
            "lat": hs.floats(51.0, 53.5), "lon": hs.floats(9.5, 11.0),
        }),
    }
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hs.lists(_exc, max_size=6))
def test_fuzz_exceptions(excs):
    body = json.loads(Plan.from_tour(VAN, default_config().tour).to_json())
    body["exceptions"] = excs
    _must_be_plan_or_planerror(json.dumps(body))


# --- random edit sequences keep every invariant ---------------------------------------

_KEYS = ["peine-marktplatz", EDEM, "wendeburg-rathaus", "neu", "fest"]
_op = hs.one_of(  # hours up to 21 (+ up to 3, capped at 23:00): always a valid time
    hs.tuples(hs.just("stop"), hs.sampled_from(_KEYS), hs.integers(0, 6), hs.integers(6, 21),
              hs.integers(1, 4)),
    hs.tuples(hs.just("remove-stop"), hs.sampled_from(_KEYS)),
    hs.tuples(hs.just("cancel"), hs.sampled_from(_KEYS), hs.integers(0, 27)),
    hs.tuples(hs.just("delay"), hs.sampled_from(_KEYS), hs.integers(0, 27), hs.integers(0, 700)),
    hs.tuples(hs.just("move"), hs.sampled_from(_KEYS), hs.integers(0, 27), hs.integers(0, 27),
              hs.integers(6, 21)),
    hs.tuples(hs.just("extra"), hs.integers(0, 27), hs.integers(6, 21), hs.integers(1, 3)),
    hs.tuples(hs.just("closed"), hs.integers(0, 27), hs.integers(-3, 10)),
    hs.tuples(hs.just("undo"), hs.integers(0, 50)),
)  # fmt: skip


def _apply(p: Plan, op: tuple) -> Plan:
    kind, *a = op
    day = lambda i: MON + timedelta(days=i)  # noqa: E731
    if kind == "stop":
        key, wd, h, n = a
        return p.with_stop(stop(key, (h, 0), (min(h + n, 23), 30), days=(wd,)))
    if kind == "remove-stop":
        return p.without_stop(a[0])
    if kind == "cancel":
        return p.with_exception(PlanException(new_id(), "cancel", day(a[1]), stop_key=a[0]))
    if kind == "delay":
        return p.with_exception(PlanException(new_id(), "delay", day(a[1]), stop_key=a[0],
                                              delay_min=a[2]))  # fmt: skip
    if kind == "move":
        return p.with_exception(PlanException(new_id(), "move", day(a[1]), stop_key=a[0],
                                              new_date=day(a[2]), start=dtime(a[3]),
                                              end=dtime(a[3] + 1)))  # fmt: skip
    if kind == "extra":
        place = PlanStop(f"x{a[0]}-{a[1]}", "Fest", "Peine", 52.32, 10.23)
        ex = PlanException(new_id(), "extra", day(a[0]), stop=place, start=dtime(a[1]),
                           end=dtime(min(a[1] + a[2], 23)))  # fmt: skip
        return p.with_exception(ex)
    if kind == "closed":
        return p.with_exception(PlanException(new_id(), "closed", day(a[0]),
                                              date_to=day(a[0] + a[1])))  # fmt: skip
    if not p.exceptions:
        raise PlanError("nothing to undo")
    return p.without_exception(p.exceptions[a[0] % len(p.exceptions)].id)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hs.lists(_op, min_size=1, max_size=12))
def test_random_edits_keep_the_invariants(ops):
    cfg = default_config()
    p = Plan.from_tour(VAN, cfg.tour[:4])
    for op in ops:
        try:
            nxt = _apply(p, op)
        except PlanError:
            continue  # refused: p is unchanged (frozen)
        assert nxt.version == p.version + 1
        assert Plan.from_json(nxt.to_json()) == nxt
        p = nxt
    # no two visits that take place overlap on any day; cancelled ones are listed
    vs = [v for v in p.visits_between(MON - timedelta(days=7), MON + timedelta(days=35), cfg.tz)]
    by_day: dict = {}
    for v in vs:
        assert v.start < v.end and v.status in ("planned", "cancelled", "delayed", "moved",
                                                "extra")  # fmt: skip
        if not v.cancelled:
            by_day.setdefault(v.start.date(), []).append(v)
    for day_vs in by_day.values():
        day_vs.sort(key=lambda v: v.start)
        for a, b in zip(day_vs, day_vs[1:], strict=False):
            assert a.end <= b.start, (a, b)
    assert len({v.uid for v in vs}) == len(vs)  # each visit once
