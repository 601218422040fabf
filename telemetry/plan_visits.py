"""A plan's visits on real dates, with its exceptions applied (see telemetry/plan.py).

Order of application for one visit: a move or a delay first, then a cancel of that
visit, then a closed period covering the day it takes place on. The uid names the
original visit (``<van>.<stop key>.<YYYYMMDD>@vanbox``, or ``<exception id>@vanbox`` for
an extra), so it stays the same when the visit is moved, delayed or cancelled, and when
the stop's hours or place change (a successor stop uses the key of the first stop it
``follows``); the ``sequence`` is the highest version of the stop and of every exception
touching it.

A weekly stop has visits only on the days of its validity range (``valid_from`` ..
``valid_to``, each open when missing): a changed or removed stop keeps its past visits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

from .errors import PlanError
from .plan_limits import MAX_SPAN_DAYS
from .plan_model import Plan, PlannedVisit, PlanStop


@dataclass(frozen=True)
class _Base:
    key: str
    day: date
    stop: PlanStop
    start: dtime
    end: dtime
    uid: str
    seq: int
    extra: bool
    reason: str = ""


class _Index:
    """The plan's exceptions by what they touch, built once per call."""

    def __init__(self, plan: Plan) -> None:
        ex = plan.exceptions
        self.cancels = {(e.stop_key, e.date): e for e in ex if e.kind == "cancel"}
        self.shifts = {(e.stop_key, e.date): e for e in ex if e.kind in ("delay", "move")}
        self.closed = [e for e in ex if e.kind == "closed" and e.date_to is not None]
        self.extras: dict[date, list] = {}
        for e in ex:
            if e.kind == "extra" and e.stop and e.start and e.end:
                self.extras.setdefault(e.date, []).append(e)
        self.moved_in: dict[date, set[date]] = {}  # new date -> original dates
        for e in self.shifts.values():
            if e.kind == "move" and e.new_date is not None:
                self.moved_in.setdefault(e.new_date, set()).add(e.date)


def _bases_on(plan: Plan, idx: _Index, day: date) -> list[_Base]:
    out = [
        _Base(
            s.key,
            day,
            s,
            s.start,
            s.end,
            f"{plan.van}.{s.follows or s.key}.{day:%Y%m%d}@vanbox",
            s.version,
            False,
        )  # fmt: skip
        for s in plan.stops
        if day.weekday() in s.weekdays and s.valid_on(day)
    ]
    for e in idx.extras.get(day, ()):
        out.append(
            _Base(
                e.stop.key, day, e.stop, e.start, e.end, f"{e.id}@vanbox", e.version, True, e.reason
            )  # fmt: skip
        )
    return out


def visits_between(plan: Plan, start: date, end: date, tz: ZoneInfo) -> list[PlannedVisit]:
    if end < start:
        return []
    if (end - start).days > MAX_SPAN_DAYS:
        raise PlanError(f"visits: at most {MAX_SPAN_DAYS} days at once")
    days = {start + timedelta(days=i) for i in range((end - start).days + 1)}
    return visits_on_days(plan, days, tz)


def visits_on_days(
    plan: Plan, days: set[date], tz: ZoneInfo, idx: _Index | None = None
) -> list[PlannedVisit]:
    """The visits taking place on any of ``days`` (exceptions applied), by start."""
    idx = idx or _Index(plan)
    sources = set(days)
    for d in days:
        sources |= idx.moved_in.get(d, set())
    out: list[PlannedVisit] = []
    for day in sorted(sources):
        for b in _bases_on(plan, idx, day):
            status = "extra" if b.extra else "planned"
            reason, seq, delay = b.reason, b.seq, 0
            on, st, en = b.day, b.start, b.end
            sh = idx.shifts.get((b.key, b.day))
            if sh is not None and sh.kind == "move" and sh.new_date and sh.start and sh.end:
                on, st, en, status = sh.new_date, sh.start, sh.end, "moved"
                reason, seq = sh.reason or reason, max(seq, sh.version)
            elif sh is not None and sh.kind == "delay":
                delay, status = sh.delay_min, "delayed"
                reason, seq = sh.reason or reason, max(seq, sh.version)
            if on not in days:
                continue
            c = idx.cancels.get((b.key, b.day))
            if c is not None:
                status, reason, seq = "cancelled", c.reason, max(seq, c.version)
            for p in idx.closed:
                assert p.date_to is not None
                if p.date <= on <= p.date_to:
                    if status != "cancelled":
                        status, reason = "cancelled", p.reason
                    seq = max(seq, p.version)
            s = b.stop
            begin = datetime.combine(on, st, tzinfo=tz)
            out.append(
                PlannedVisit(
                    uid=b.uid,
                    van=plan.van,
                    stop_key=b.key,
                    name=s.name,
                    municipality=s.municipality,
                    lat=s.lat,
                    lon=s.lon,
                    radius_m=s.radius_m,
                    start=begin + timedelta(minutes=delay),
                    end=datetime.combine(on, en, tzinfo=tz),
                    status=status,
                    delay_min=delay,
                    reason=reason,
                    sequence=seq,
                    planned_start=datetime.combine(b.day, b.start, tzinfo=tz),
                )
            )
    out.sort(key=lambda v: (v.start, v.name, v.uid))
    return out
