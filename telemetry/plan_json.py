"""The tour plan's JSON (the ``plans.body`` column and the retained MQTT payload). Used
through :class:`telemetry.plan.Plan` (``from_json``, ``to_json``); a plan read is checked
against every rule (:func:`telemetry.plan_rules.validate_plan`).

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
import uuid
from datetime import date
from datetime import time as dtime
from typing import Any

from .config import WEEKDAYS
from .errors import PlanError
from .plan_limits import (
    DELAY_MAX,
    DELAY_MIN,
    KEY_RE,
    KINDS,
    MAX_EXCEPTIONS,
    MAX_JSON,
    MAX_STOPS,
    NAME_MAX,
    RADIUS_M,
    REASON_MAX,
    VAN_RE,
    YEARS,
)
from .plan_model import Plan, PlanException, PlanStop
from .plan_rules import clean_text, field_error, hhmm, validate_plan

# --- writing --------------------------------------------------------------------------


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
        start=hhmm(s.start),
        end=hhmm(s.end),
        version=s.version,
    )
    if s.valid_from is not None:
        d["valid_from"] = s.valid_from.isoformat()
    if s.valid_to is not None:
        d["valid_to"] = s.valid_to.isoformat()
    if s.follows is not None:
        d["follows"] = s.follows
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
        d.update(start=hhmm(e.start), end=hhmm(e.end))
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


def _obj(v: Any, path: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise field_error(path, v, "expected an object")
    return v


def _int(d: dict, k: str, path: str, lo: int, hi: int) -> int:
    v = d.get(k)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise field_error(f"{path}.{k}" if path else k, v, f"a whole number from {lo} to {hi}")
    return v


def _num(d: dict, k: str, path: str, lo: float, hi: float) -> float:
    v = d.get(k)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise field_error(f"{path}.{k}" if path else k, v, f"a number from {lo:g} to {hi:g}")
    if not lo <= v <= hi:
        raise field_error(f"{path}.{k}" if path else k, v, f"a number from {lo:g} to {hi:g}")
    return float(v)


def _text(d: dict, k: str, path: str, limit: int, *, empty: bool = True) -> str:
    return clean_text(d.get(k, "" if empty else None), f"{path}.{k}", limit, empty=empty)


def parse_hhmm(v: Any, path: str) -> dtime:
    if not isinstance(v, str) or len(v) != 5 or v[2] != ":" or not (v[:2] + v[3:]).isdigit():
        raise field_error(path, v, 'a time "HH:MM", e.g. "14:30"')
    h, m = int(v[:2]), int(v[3:])
    if h > 23 or m > 59:
        raise field_error(path, v, 'a time of day from "00:00" to "23:59"')
    return dtime(h, m)


def parse_date(v: Any, path: str) -> date:
    if not isinstance(v, str) or len(v) != 10:
        raise field_error(path, v, 'a date "YYYY-MM-DD"')
    try:
        d = date.fromisoformat(v)
    except ValueError:
        raise field_error(path, v, 'a date "YYYY-MM-DD"') from None
    if not YEARS[0] <= d.year <= YEARS[1]:
        raise field_error(path, v, f"a year from {YEARS[0]} to {YEARS[1]}")
    return d


def _key(d: dict, k: str, path: str) -> str:
    v = d.get(k)
    if not isinstance(v, str) or not KEY_RE.fullmatch(v):
        raise field_error(f"{path}.{k}", v, "a key of a-z, 0-9 and '-' (at most 40)")
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
            raise field_error(f"{path}.weekdays", days, f"a list from {', '.join(WEEKDAYS)}")
        weekdays = tuple(sorted({WEEKDAYS.index(x) for x in days}))
        start = parse_hhmm(d.get("start"), f"{path}.start")
        end = parse_hhmm(d.get("end"), f"{path}.end")
        valid_from = _opt_date(d, "valid_from", path)
        valid_to = _opt_date(d, "valid_to", path)
        follows = None if d.get("follows") is None else _key(d, "follows", path)
    else:
        valid_from = valid_to = follows = None
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
        follows=follows,
    )


def _opt_date(d: dict, k: str, path: str) -> date | None:
    """An optional date field: missing or null is None (open)."""
    v = d.get(k)
    return None if v is None else parse_date(v, f"{path}.{k}")


def _exception_of(d: dict, path: str) -> PlanException:
    kind = d.get("kind")
    if kind not in KINDS:
        raise field_error(f"{path}.kind", kind, f"one of {', '.join(KINDS)}")
    ex_id = d.get("id")
    try:
        ok = isinstance(ex_id, str) and str(uuid.UUID(ex_id)) == ex_id
    except ValueError:
        ok = False
    if not ok:
        raise field_error(f"{path}.id", ex_id, "a UUID in lower case with dashes")
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
        raise field_error("van", van, "a van id (a-z, 0-9, '-', '_'; at most 40)")
    stops = d.get("stops")
    if not isinstance(stops, list) or len(stops) > MAX_STOPS:
        raise field_error("stops", stops, f"a list of at most {MAX_STOPS} stops")
    exc = d.get("exceptions", [])
    if not isinstance(exc, list) or len(exc) > MAX_EXCEPTIONS:
        raise field_error("exceptions", exc, f"a list of at most {MAX_EXCEPTIONS} exceptions")
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
