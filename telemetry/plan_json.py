"""The tour plan's JSON (the ``plans.body`` column and the retained MQTT payload) and
the rules every plan must keep. Used through :class:`telemetry.plan.Plan`.

    {"van": "jr-1", "version": 3, "updated": 1764400000.0,
     "stops": [{"key": "edemissen-schulzentrum", "name": "Edemissen, Schulzentrum",
                "municipality": "Edemissen", "lat": 52.386, "lon": 10.261,
                "radius_m": 150.0, "weekdays": ["mon"], "start": "14:30", "end": "18:00",
                "version": 0}],
     "exceptions": [{"id": "<uuid4>", "kind": "cancel", "date": "2026-11-30",
                     "stop": "edemissen-schulzentrum", "reason": "Krankheit", "version": 3}]}

Optional stop fields ``valid_from`` and ``valid_to`` ("YYYY-MM-DD", both days included)
limit a weekly stop to a date range: a stop changed or removed by staff ends the day
before the change (and its successor starts that day), so past weeks stay as they were
planned. Missing (or null) means open: a plan written without them (an older hub or
box) has stops valid always, as before. They are written only when set, so a plan
without ranges has the same JSON as before; a box that does not know them ignores them
(see docs/plan-format.md).

Exception fields by kind: ``cancel`` date, stop, reason; ``delay`` + delay_min;
``move`` + new_date, start, end; ``extra`` date, place (key, name, municipality, lat,
lon, radius_m), start, end, reason; ``closed`` date_from, date_to, reason.
"""

from __future__ import annotations

import json
import math
import unicodedata
import uuid
from collections import defaultdict
from datetime import date, datetime
from datetime import time as dtime
from typing import Any

from .config import WEEKDAYS
from .errors import PlanError
from .plan import (
    DELAY_MAX,
    DELAY_MIN,
    KEY_RE,
    KINDS,
    MAX_CLOSED_DAYS,
    MAX_EXCEPTIONS,
    MAX_JSON,
    MAX_STOPS,
    NAME_MAX,
    RADIUS_M,
    REASON_MAX,
    VAN_RE,
    YEARS,
    Plan,
    PlanException,
    PlanStop,
    in_landkreis,
)

# --- writing --------------------------------------------------------------------------


def _hm(t: dtime | None) -> str | None:
    return None if t is None else t.strftime("%H:%M")


def _place(s: PlanStop) -> dict[str, Any]:
    return {
        "key": s.key,
        "name": s.name,
        "municipality": s.municipality,
        "lat": s.lat,
        "lon": s.lon,
        "radius_m": s.radius_m,
    }


def _stop(s: PlanStop) -> dict[str, Any]:
    d = _place(s)
    d.update(
        weekdays=[WEEKDAYS[i] for i in s.weekdays],
        start=_hm(s.start),
        end=_hm(s.end),
        version=s.version,
    )
    if s.valid_from is not None:
        d["valid_from"] = s.valid_from.isoformat()
    if s.valid_to is not None:
        d["valid_to"] = s.valid_to.isoformat()
    return d


def _exception(e: PlanException) -> dict[str, Any]:
    d: dict[str, Any] = {"id": e.id, "kind": e.kind, "version": e.version}
    if e.kind == "closed":
        d.update(date_from=e.date.isoformat(), date_to=e.date_to.isoformat() if e.date_to else None)
    else:
        d["date"] = e.date.isoformat()
    if e.kind in ("cancel", "delay", "move"):
        d["stop"] = e.stop_key
    if e.kind == "delay":
        d["delay_min"] = e.delay_min
    if e.kind == "move":
        d["new_date"] = e.new_date.isoformat() if e.new_date else None
    if e.kind in ("move", "extra"):
        d.update(start=_hm(e.start), end=_hm(e.end))
    if e.kind == "extra" and e.stop is not None:
        d["place"] = _place(e.stop)
    d["reason"] = e.reason
    return d


def plan_to_json(plan: Plan) -> str:
    body = {
        "van": plan.van,
        "version": plan.version,
        "updated": plan.updated,
        "stops": [_stop(s) for s in plan.stops],
        "exceptions": [_exception(e) for e in plan.exceptions],
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


# --- reading --------------------------------------------------------------------------


def _fail(path: str, value: Any, why: str) -> PlanError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return PlanError(f"{path} = {shown}: {why}")


def _obj(v: Any, path: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise _fail(path, v, "expected an object")
    return v


def _int(d: dict, k: str, path: str, lo: int, hi: int) -> int:
    v = d.get(k)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _fail(f"{path}.{k}" if path else k, v, f"a whole number from {lo} to {hi}")
    return v


def _num(d: dict, k: str, path: str, lo: float, hi: float) -> float:
    v = d.get(k)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise _fail(f"{path}.{k}" if path else k, v, f"a number from {lo:g} to {hi:g}")
    if not lo <= v <= hi:
        raise _fail(f"{path}.{k}" if path else k, v, f"a number from {lo:g} to {hi:g}")
    return float(v)


def clean_text(v: Any, path: str, limit: int, *, empty: bool = True) -> str:
    """A public text: a string of at most ``limit`` characters without control characters."""
    if not isinstance(v, str):
        raise _fail(path, v, "expected text")
    v = v.strip()
    if not v and not empty:
        raise _fail(path, v, "must not be empty")
    if len(v) > limit:
        raise _fail(path, v, f"at most {limit} characters")
    if not v.isprintable():  # rare (a no-break space, a joiner): look at each character
        for c in v:
            if unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn") or c in "\u2028\u2029":
                raise _fail(path, v, "no control characters")
    return v


def _text(d: dict, k: str, path: str, limit: int, *, empty: bool = True) -> str:
    return clean_text(d.get(k, "" if empty else None), f"{path}.{k}", limit, empty=empty)


def parse_hhmm(v: Any, path: str) -> dtime:
    if not isinstance(v, str) or len(v) != 5 or v[2] != ":" or not (v[:2] + v[3:]).isdigit():
        raise _fail(path, v, 'a time "HH:MM", e.g. "14:30"')
    h, m = int(v[:2]), int(v[3:])
    if h > 23 or m > 59:
        raise _fail(path, v, 'a time of day from "00:00" to "23:59"')
    return dtime(h, m)


def parse_date(v: Any, path: str) -> date:
    if not isinstance(v, str) or len(v) != 10:
        raise _fail(path, v, 'a date "YYYY-MM-DD"')
    try:
        d = date.fromisoformat(v)
    except ValueError:
        raise _fail(path, v, 'a date "YYYY-MM-DD"') from None
    if not YEARS[0] <= d.year <= YEARS[1]:
        raise _fail(path, v, f"a year from {YEARS[0]} to {YEARS[1]}")
    return d


def _key(d: dict, k: str, path: str) -> str:
    v = d.get(k)
    if not isinstance(v, str) or not KEY_RE.fullmatch(v):
        raise _fail(f"{path}.{k}", v, "a key of a-z, 0-9 and '-' (at most 40)")
    return v


def _place_of(d: dict, path: str, *, template: bool) -> PlanStop:
    lat = _num(d, "lat", path, -90, 90)
    lon = _num(d, "lon", path, -180, 180)
    weekdays: tuple[int, ...] = ()
    start = end = dtime(0, 0)
    if template:
        days = d.get("weekdays")
        if (
            not isinstance(days, list)
            or not days
            or len(days) > 7
            or any(not isinstance(x, str) or x not in WEEKDAYS for x in days)
        ):
            raise _fail(f"{path}.weekdays", days, f"a list from {', '.join(WEEKDAYS)}")
        weekdays = tuple(sorted({WEEKDAYS.index(x) for x in days}))
        start = parse_hhmm(d.get("start"), f"{path}.start")
        end = parse_hhmm(d.get("end"), f"{path}.end")
        valid_from = _opt_date(d, "valid_from", path)
        valid_to = _opt_date(d, "valid_to", path)
    else:
        valid_from = valid_to = None
    return PlanStop(
        key=_key(d, "key", path),
        name=_text(d, "name", path, NAME_MAX, empty=False),
        municipality=_text(d, "municipality", path, NAME_MAX, empty=False),
        lat=lat,
        lon=lon,
        radius_m=_num(d, "radius_m", path, *RADIUS_M) if "radius_m" in d else 150.0,
        weekdays=weekdays,
        start=start,
        end=end,
        version=_int(d, "version", path, 0, 2**53) if "version" in d else 0,
        valid_from=valid_from,
        valid_to=valid_to,
    )


def _opt_date(d: dict, k: str, path: str) -> date | None:
    """An optional date field: missing or null is None (open)."""
    v = d.get(k)
    return None if v is None else parse_date(v, f"{path}.{k}")


def _exception_of(d: dict, path: str) -> PlanException:
    kind = d.get("kind")
    if kind not in KINDS:
        raise _fail(f"{path}.kind", kind, f"one of {', '.join(KINDS)}")
    ex_id = d.get("id")
    try:
        ok = isinstance(ex_id, str) and str(uuid.UUID(ex_id)) == ex_id
    except ValueError:
        ok = False
    if not ok:
        raise _fail(f"{path}.id", ex_id, "a UUID in lower case with dashes")
    f: dict[str, Any] = {"id": ex_id, "kind": kind}
    f["version"] = _int(d, "version", path, 0, 2**53) if "version" in d else 0
    f["reason"] = _text(d, "reason", path, REASON_MAX)
    if kind == "closed":
        f["date"] = parse_date(d.get("date_from"), f"{path}.date_from")
        f["date_to"] = parse_date(d.get("date_to"), f"{path}.date_to")
    else:
        f["date"] = parse_date(d.get("date"), f"{path}.date")
    if kind in ("cancel", "delay", "move"):
        f["stop_key"] = _key(d, "stop", path)
    if kind == "delay":
        f["delay_min"] = _int(d, "delay_min", path, DELAY_MIN, DELAY_MAX)
    if kind == "move":
        f["new_date"] = parse_date(d.get("new_date"), f"{path}.new_date")
    if kind in ("move", "extra"):
        f["start"] = parse_hhmm(d.get("start"), f"{path}.start")
        f["end"] = parse_hhmm(d.get("end"), f"{path}.end")
    if kind == "extra":
        place = _place_of(_obj(d.get("place"), f"{path}.place"), f"{path}.place", template=False)
        f["stop"] = place
        f["stop_key"] = place.key
    return PlanException(**f)


def plan_from_json(text: str | bytes) -> Plan:
    """Parse and validate; anything wrong raises PlanError naming the field."""
    if isinstance(text, bytes | bytearray):
        if len(text) > MAX_JSON:
            raise PlanError(f"plan: {len(text)} bytes, at most {MAX_JSON}")
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise PlanError("plan: not UTF-8 text") from None
    if not isinstance(text, str):
        raise PlanError("plan: expected JSON text")
    if len(text) > MAX_JSON:
        raise PlanError(f"plan: {len(text)} characters, at most {MAX_JSON}")
    try:
        d = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise PlanError(f"plan: not JSON ({str(e)[:80]})") from None
    d = _obj(d, "plan")
    van = d.get("van")
    if not isinstance(van, str) or not VAN_RE.fullmatch(van):
        raise _fail("van", van, "a van id (a-z, 0-9, '-', '_'; at most 40)")
    stops = d.get("stops")
    if not isinstance(stops, list) or len(stops) > MAX_STOPS:
        raise _fail("stops", stops, f"a list of at most {MAX_STOPS} stops")
    exc = d.get("exceptions", [])
    if not isinstance(exc, list) or len(exc) > MAX_EXCEPTIONS:
        raise _fail("exceptions", exc, f"a list of at most {MAX_EXCEPTIONS} exceptions")
    plan = Plan(
        van=van,
        version=_int(d, "version", "", 0, 2**53),
        updated=_num(d, "updated", "", 0, 4e9),
        stops=tuple(
            _place_of(_obj(s, f"stops[{i}]"), f"stops[{i}]", template=True)
            for i, s in enumerate(stops)
        ),
        exceptions=tuple(
            _exception_of(_obj(e, f"exceptions[{i}]"), f"exceptions[{i}]")
            for i, e in enumerate(exc)
        ),
    )
    validate_plan(plan)
    return plan


# --- the rules ------------------------------------------------------------------------


def _hours(a: dtime, b: dtime) -> str:
    return f"{a:%H:%M}–{b:%H:%M}"


def _check_place(s: PlanStop, path: str) -> None:
    if not KEY_RE.fullmatch(s.key):
        raise _fail(f"{path}.key", s.key, "a key of a-z, 0-9 and '-' (at most 40)")
    clean_text(s.name, f"{path}.name", NAME_MAX, empty=False)
    clean_text(s.municipality, f"{path}.municipality", NAME_MAX, empty=False)
    for k, v, lim in (("lat", s.lat, 90), ("lon", s.lon, 180)):
        if not isinstance(v, int | float) or not math.isfinite(v) or not -lim <= v <= lim:
            raise _fail(f"{path}.{k}", v, f"decimal degrees from -{lim} to {lim}")
    if not in_landkreis(s.lat, s.lon):
        raise _fail(
            f"{path}.lat/lon", (round(s.lat, 5), round(s.lon, 5)),
            f"{s.name!r} is outside the Landkreis Peine (Haltestelle außerhalb des Landkreises)",
        )  # fmt: skip
    if not RADIUS_M[0] <= s.radius_m <= RADIUS_M[1]:
        raise _fail(f"{path}.radius_m", s.radius_m, "metres from 10 to 5000")


def _overlap(a: tuple[dtime, dtime], b: tuple[dtime, dtime]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _same_time(a: PlanStop, b: PlanStop) -> bool:
    """Do the validity ranges of two weekly stops share a day (open ends: always)?"""
    lo = max((d for d in (a.valid_from, b.valid_from) if d is not None), default=None)
    hi = min((d for d in (a.valid_to, b.valid_to) if d is not None), default=None)
    return lo is None or hi is None or lo <= hi


def _check_range(s: PlanStop, path: str) -> None:
    """``valid_from`` and ``valid_to``: dates in the years allowed, the end not before the
    start."""
    for k in ("valid_from", "valid_to"):
        v = getattr(s, k)
        if v is None:
            continue
        if not isinstance(v, date) or isinstance(v, datetime):
            raise _fail(f"{path}.{k}", v, 'a date "YYYY-MM-DD" or none')
        if not YEARS[0] <= v.year <= YEARS[1]:
            raise _fail(f"{path}.{k}", v.isoformat(), f"a year from {YEARS[0]} to {YEARS[1]}")
    if s.valid_from is not None and s.valid_to is not None and s.valid_to < s.valid_from:
        raise _fail(
            f"{path}.valid_to", s.valid_to.isoformat(),
            f"{s.name!r} ends before it starts ({s.valid_from.isoformat()}); "
            "gültig bis vor gültig ab",
        )  # fmt: skip


def validate_plan(plan: Plan) -> None:
    """Every rule a plan keeps; the first broken one raises PlanError naming the field."""
    if not isinstance(plan.van, str) or not VAN_RE.fullmatch(plan.van):
        raise _fail("van", plan.van, "a van id (a-z, 0-9, '-', '_'; at most 40)")
    if len(plan.stops) > MAX_STOPS:
        raise _fail("stops", len(plan.stops), f"at most {MAX_STOPS} stops")
    if len(plan.exceptions) > MAX_EXCEPTIONS:
        raise _fail("exceptions", len(plan.exceptions), f"at most {MAX_EXCEPTIONS}")
    keys: set[str] = set()
    for i, s in enumerate(plan.stops):
        path = f"stops[{i}]"
        _check_place(s, path)
        if s.key in keys:
            raise _fail(f"{path}.key", s.key, "two stops with the same key")
        keys.add(s.key)
        if not s.weekdays or any(d not in range(7) for d in s.weekdays):
            raise _fail(f"{path}.weekdays", s.weekdays, "at least one weekday")
        if s.end <= s.start:
            raise _fail(
                f"{path}.end", _hm(s.end),
                f"{s.name!r} ends before it starts ({_hm(s.start)}); Ende vor Beginn",
            )  # fmt: skip
        _check_range(s, path)
    # Two template stops on the same weekday (and in force at the same time) must not overlap.
    for i, a in enumerate(plan.stops):
        for b in plan.stops[i + 1 :]:
            common = set(a.weekdays) & set(b.weekdays)
            if common and _same_time(a, b) and _overlap((a.start, a.end), (b.start, b.end)):
                day = WEEKDAYS[min(common)]
                raise PlanError(
                    f"stops: {a.name!r} ({_hours(a.start, a.end)}) and {b.name!r} "
                    f"({_hours(b.start, b.end)}) overlap on {day} (Termine überschneiden sich)"
                )
    ids: set[str] = set()
    extra_keys: dict[str, list[date]] = defaultdict(list)
    for e in plan.exceptions:
        if e.kind == "extra" and e.stop is not None:
            extra_keys[e.stop.key].append(e.date)
    one_per: set[tuple[str, str, date]] = set()
    for i, e in enumerate(plan.exceptions):
        path = f"exceptions[{i}]"
        if e.kind not in KINDS:
            raise _fail(f"{path}.kind", e.kind, f"one of {', '.join(KINDS)}")
        if e.id in ids:
            raise _fail(f"{path}.id", e.id, "two exceptions with the same id")
        ids.add(e.id)
        clean_text(e.reason, f"{path}.reason", REASON_MAX)
        if not YEARS[0] <= e.date.year <= YEARS[1]:
            raise _fail(f"{path}.date", e.date.isoformat(), f"a year from {YEARS[0]} to {YEARS[1]}")
        if e.kind in ("cancel", "delay", "move"):
            if e.stop_key not in keys and e.stop_key not in extra_keys:
                raise _fail(f"{path}.stop", e.stop_key, "unknown stop key (kein solcher Halt)")
            group = "cancel" if e.kind == "cancel" else "shift"
            if (group, e.stop_key, e.date) in one_per:
                raise _fail(
                    f"{path}.date", e.date.isoformat(),
                    f"a second {e.kind} for {e.stop_key!r} on that day; edit the first one",
                )  # fmt: skip
            one_per.add((group, e.stop_key, e.date))
        if e.kind == "delay":
            if isinstance(e.delay_min, bool) or not isinstance(e.delay_min, int):
                raise _fail(f"{path}.delay_min", e.delay_min, "whole minutes")
            if not DELAY_MIN <= e.delay_min <= DELAY_MAX:
                raise _fail(
                    f"{path}.delay_min", e.delay_min,
                    f"minutes from {DELAY_MIN} to {DELAY_MAX} (Verspätung 1 bis 600 Minuten)",
                )  # fmt: skip
            st, en = _hours_of(plan, e.stop_key, e.date)
            if st is not None and en is not None:
                mins = (en.hour * 60 + en.minute) - (st.hour * 60 + st.minute)
                if e.delay_min >= mins:
                    raise _fail(
                        f"{path}.delay_min", e.delay_min,
                        f"the visit ({_hours(st, en)}) would start at or after its end",
                    )  # fmt: skip
        if e.kind in ("move", "extra"):
            if e.start is None or e.end is None:
                raise _fail(f"{path}.start", e.start, "start and end are needed")
            if e.end <= e.start:
                raise _fail(
                    f"{path}.end", _hm(e.end),
                    f"ends before it starts ({_hm(e.start)}); Ende vor Beginn",
                )  # fmt: skip
        if e.kind == "move":
            if e.new_date is None or not YEARS[0] <= e.new_date.year <= YEARS[1]:
                raise _fail(f"{path}.new_date", e.new_date, "the new date is needed")
        if e.kind == "extra":
            if e.stop is None:
                raise _fail(f"{path}.place", None, "an extra visit needs a place")
            _check_place(e.stop, f"{path}.place")
        if e.kind == "closed":
            if e.date_to is None or e.date_to < e.date:
                raise _fail(
                    f"{path}.date_to", e.date_to.isoformat() if e.date_to else None,
                    f"the closed period ends before it starts ({e.date.isoformat()})",
                )  # fmt: skip
            if (e.date_to - e.date).days >= MAX_CLOSED_DAYS:
                raise _fail(f"{path}.date_to", e.date_to.isoformat(), "at most a year")
    _check_dated_overlaps(plan)


def _hours_of(plan: Plan, key: str, day: date) -> tuple[dtime | None, dtime | None]:
    """Start and end of the visit of ``key`` on ``day`` (template stop or extra)."""
    s = plan.stop(key)
    if s is not None:
        return s.start, s.end
    for x in plan.exceptions:
        if x.kind == "extra" and x.stop is not None and x.stop.key == key and x.date == day:
            return x.start, x.end
    return None, None


def _check_dated_overlaps(plan: Plan) -> None:
    """Visits that an extra or a move puts on a day must not overlap that day's others."""
    from zoneinfo import ZoneInfo

    from .plan_visits import visits_on_days

    days = {e.date for e in plan.exceptions if e.kind == "extra"}
    days |= {e.new_date for e in plan.exceptions if e.kind == "move" and e.new_date}
    if not days:
        return
    utc = ZoneInfo("UTC")  # the local zone does not matter for same-day comparisons
    by_day: dict[date, list] = defaultdict(list)
    for v in visits_on_days(plan, days, utc):
        if not v.cancelled:
            by_day[v.start.date()].append(v)
    for day in sorted(by_day):
        vs = by_day[day]  # sorted by start: each needs checking against the next only...
        for i, a in enumerate(vs):
            for b in vs[i + 1 :]:
                if b.start >= a.end:
                    continue  # ...but a long visit may cover several later ones
                raise PlanError(
                    f"exceptions: on {day.isoformat()} {a.name!r} "
                    f"({a.start:%H:%M}–{a.end:%H:%M}) and {b.name!r} "
                    f"({b.start:%H:%M}–{b.end:%H:%M}) overlap (Termine überschneiden sich)"
                )
