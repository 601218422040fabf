"""Delivery to the hub: the tally and ack wire format, and the counting box and hub share.

A PUBACK only says the broker has a message. Whether the *hub* has it is settled by
these messages (the box's resending is in :mod:`telemetry.delivery`, the hub's side in
:mod:`hub.reconcile`):

- **Tally** (box -> hub, ``<prefix>/<van>/tally``, QoS 1, retained)::

      {"v":1,"tst":1764400000,"outbox":3,
       "kinds":["footfall","checkin","stop","stop_left","position","contact"],
       "days":{"2026-11-23":[14,3,2,2,610,4], ...}}

  Per local day of the reconciliation window (``mqtt.reconcile_days``, default 62), the
  number of events per kind that have *left the outbox* (published and acknowledged by the
  broker); events still queued are not counted, so they never look missing. Track points
  that were thinned unsent (``delivery_thinned``) and suspect fixes (never published) are
  left out too. ``stop`` counts stop visits, ``stop_left`` those with a leaving time (the
  second message of a visit), ``contact`` the staff's counselling contacts a box recorded.
  The kinds are those of the event kinds' registry (telemetry/kinds.py; a tally without
  ``"kinds"`` has the five of version 1). Days with nothing are left out. The counts are a list in
  the order of ``kinds`` (a dict per day, as first drafted, cost 3x the bytes: the tally
  goes out every few minutes on a service day). The hub also accepts
  ``{"footfall": n, ...}`` per day. The *full* tally (every day of the window) is sent
  retained on connect, after a resend, daily, whenever a day before today changed (a
  backlog went out), and at most every 30 min while today's counts change; between
  those, a tally of today only goes out not retained, so the retained message stays a
  full one (today's counts at most 30 min behind) for a hub that (re)subscribes.
  Measured on a service day with a tally every 5 minutes and 61 days of history: full
  tallies and acks every time cost 273 kB/day; today only every 5 min with a full tally
  every 30 min, 74 kB/day
  (benchmarks/bench_publish.py; the whole day then 0.28 MB of MQTT, 0.60 MB with IP/TCP
  headers, against 0.20 / 0.49 MB without reconciliation).
- **Ack** (hub -> box, ``<prefix>/<van>/ack``, QoS 1, retained): the same shape with the
  hub's counts, ``"re"`` = the tally's ``tst`` it answers, and ``"missing": {day: [kind,
  ...]}``, what the hub asks for (hub/reconcile.py decides, with its own back-off).
- **Resend**: for each missing (day, kind) the box puts the events of that day and kind
  back into the outbox from its tables, with the same ids and payloads as the first time
  and not those still in the outbox. Counts, check-ins and stop visits are never dropped;
  re-sent track points go out in ``track`` batches (priority 2, after live positions,
  never as the retained ``location``) and may be thinned like any other. Back-off: the
  same (day, kind) is re-sent again only after ``backoff_s`` (10 min, doubling up to a
  day) unless the box's count changed, so a stale or repeated ack never makes a loop.
- **Confirmed days**: a day is confirmed when the hub holds at least the box's count of
  every kind and nothing of that day is queued. Retention keeps the raw events of
  unconfirmed days on a box that publishes (telemetry/retention.py).

Both box and hub count with :func:`day_counts` (the hub has no outbox and nothing
thinned, so the same query gives its own counts). Box and hub must use the same
``timezone``: the day of an event is fixed in the store that records it.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from . import kinds, topics
from .errors import PayloadError
from .events import from_epoch, to_epoch
from .kinds import RESEND_POSITION_PRIORITY as RESEND_POSITION_PRIORITY
from .store import Store

log = logging.getLogger("vanbox.tally")

# The tally kinds of version 1, in their wire order: a tally without "kinds" lists these.
V1_KINDS = ("footfall", "checkin", "stop", "stop_left", "position")


def tally_kinds() -> tuple[str, ...]:
    """Every tally kind of the registered event kinds (telemetry/kinds.py): those of
    version 1 first, in their order, then the others in the order they were registered."""
    found = [t for k in kinds.registered() for t in k.tally]
    return tuple(t for t in V1_KINDS if t in found) + tuple(t for t in found if t not in V1_KINDS)


KINDS = tally_kinds()  # the built-in kinds: footfall, ..., position, contact
VERSION = 1
DEFAULT_WINDOW_DAYS = 62
MAX_DAYS = 400
MAX_COUNT = 10**7
MAX_OUTBOX = 10**9
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_KIND = re.compile(r"^[a-z_]{1,32}$")
MAX_KINDS = 16  # kind names in a tally (6 today)


@dataclass(frozen=True)
class Tally:
    """A decoded tally or ack: counts per day and kind, and (ack) what is missing."""

    tst: float
    days: dict[str, dict[str, int]]
    outbox: int = 0
    re: float | None = None
    missing: dict[str, tuple[str, ...]] | None = None
    # The known kinds the sender counted, in its order. A reply names only these, so a box
    # of an older release (which knows fewer kinds) can read the hub's ack.
    kinds: tuple[str, ...] = V1_KINDS


# --- counting -----------------------------------------------------------------------


def day_start(store: Store, day: str) -> float:
    return to_epoch(datetime.combine(date.fromisoformat(day), dtime(), store.tz))


def first_day(store: Store, now: float, window_days: int) -> str:
    return (store.local(from_epoch(now)).date() - timedelta(days=window_days - 1)).isoformat()


def outbox_kind(tally_kind: str) -> str:
    """The outbox kind a tally kind travels as (``stop_left`` as ``stop``)."""
    found = kinds.for_tally(tally_kind)
    return found[0].name if found else tally_kind


def count_sql() -> dict[str, str]:
    """Per tally kind, the query of its events per day that are not queued (its table,
    time column, published rows and tally condition, from the registry)."""
    out = {}
    for t in tally_kinds():
        ek, cond = kinds.for_tally(t)  # type: ignore[misc] - t comes from the registry
        where = "".join(f" AND {c}" for c in (ek.published, cond) if c)
        out[t] = (
            f"SELECT day, count(*) FROM {ek.table} WHERE van = ? AND {ek.time_column} >= ?"
            f" AND day >= ?{where}"
            f" AND id NOT IN (SELECT event_id FROM outbox WHERE kind = '{ek.name}') GROUP BY day"
        )
    return out


def day_counts(
    conn: sqlite3.Connection, van: str, since_day: str, since_ts: float
) -> dict[str, dict[str, int]]:
    """Events of ``van`` per local day (>= ``since_day``) and kind that are not queued in
    the outbox, less the thinned track points. Days with nothing are left out."""
    out: dict[str, dict[str, int]] = {}
    # A day starts at local midnight; one day of slack covers a changed UTC offset.
    ts = since_ts - 86_400
    sql = count_sql()
    for kind, query in sql.items():
        for day, n in conn.execute(query, (van, ts, since_day)):
            out.setdefault(day, dict.fromkeys(sql, 0))[kind] = n
    for day, kind, n in conn.execute(
        "SELECT day, kind, n FROM delivery_thinned WHERE day >= ?", (since_day,)
    ):
        if day in out and kind in out[day]:
            out[day][kind] = max(0, out[day][kind] - n)
    return {d: c for d, c in sorted(out.items()) if any(c.values())}


def encode(
    days: dict[str, dict[str, int]],
    *,
    tst: float,
    outbox: int | None = None,
    re_tst: float | None = None,
    missing: dict[str, list[str]] | None = None,
    only: Sequence[str] | None = None,
) -> str:
    """The tally (or ack) as JSON. ``only`` limits it to the kinds a peer named (an ack
    answers a tally with the tally's kinds); default: every registered kind."""
    d: dict[str, Any] = {"v": VERSION, "tst": int(tst)}
    if outbox is not None:
        d["outbox"] = outbox
    if re_tst is not None:
        d["re"] = int(re_tst)
    names = tuple(only) if only is not None else tally_kinds()
    d["kinds"] = list(names)
    d["days"] = {day: [c.get(k, 0) for k in names] for day, c in sorted(days.items())}
    if missing is not None:
        d["missing"] = {day: list(ks) for day, ks in sorted(missing.items())}
    return topics.dumps(d)


# --- decoding (every field checked, with bounds) --------------------------------------


def _int(v: Any, lo: int, hi: int, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise PayloadError(f"{what}: must be a whole number from {lo} to {hi}, got {v!r:.40}")
    return v


def _time(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise PayloadError(f"{what}: must be a Unix time, got {v!r:.40}")
    if not 946_684_800 <= v <= 4_102_444_800:  # 2000 .. 2100
        raise PayloadError(f"{what}: {v!r:.40} is not a time between 2000 and 2100")
    return float(v)


def _day(v: Any, tst: float, what: str) -> str:
    if not isinstance(v, str) or not _DAY.match(v):
        raise PayloadError(f"{what}: {v!r:.40} is not a day (YYYY-MM-DD)")
    try:
        d = date.fromisoformat(v)
    except ValueError:
        raise PayloadError(f"{what}: {v!r} is not a day of the calendar") from None
    ref = from_epoch(tst).date()
    if not ref - timedelta(days=MAX_DAYS + 31) <= d <= ref + timedelta(days=1):
        raise PayloadError(f"{what}: day {v} is too far from the message time {ref}")
    return v


def decode(payload: bytes | str | dict, where: str = "tally", *, ack: bool = False) -> Tally:
    """Check a tally (or, ``ack=True``, an ack) field by field; :class:`PayloadError` on
    anything out of bounds."""
    if isinstance(payload, bytes | str):
        if len(payload) > 256 * 1024:
            raise PayloadError(f"{where}: payload too large ({len(payload)} bytes)")
        try:
            d = json.loads(payload)
        except (ValueError, RecursionError):
            raise PayloadError(f"{where}: payload is not JSON") from None
    else:
        d = payload
    if not isinstance(d, dict):
        raise PayloadError(f"{where}: payload must be a JSON object")
    allowed = {"v", "tst", "outbox", "kinds", "days"} | ({"re", "missing"} if ack else set())
    extra = set(d) - allowed
    if extra:
        raise PayloadError(f"{where}: unknown field {sorted(extra)[0]!r:.40}")
    if d.get("v") != VERSION or isinstance(d.get("v"), bool):
        raise PayloadError(f"{where}: 'v' must be {VERSION}")
    tst = _time(d.get("tst"), f"{where}.tst")
    outbox = _int(d.get("outbox", 0), 0, MAX_OUTBOX, f"{where}.outbox")
    re_tst = _time(d["re"], f"{where}.re") if d.get("re") is not None else None
    known = tally_kinds()
    names = d.get("kinds", list(V1_KINDS))
    # Kinds of a newer release (a box upgraded before its hub) are read and left out:
    # well-formed names only, each once, at most MAX_KINDS.
    if (
        not isinstance(names, list)
        or len(names) > MAX_KINDS
        or not all(isinstance(k, str) and _KIND.match(k) for k in names)
        or len(set(names)) != len(names)
    ):
        raise PayloadError(
            f"{where}.kinds: a list of at most {MAX_KINDS} distinct kind names (a-z, _)"
        )
    raw = d.get("days")
    if not isinstance(raw, dict):
        raise PayloadError(f"{where}.days: must be an object of days")
    if len(raw) > MAX_DAYS:
        raise PayloadError(f"{where}.days: {len(raw)} days; at most {MAX_DAYS}")
    days: dict[str, dict[str, int]] = {}
    for day, v in raw.items():
        day = _day(day, tst, f"{where}.days")
        if isinstance(v, list):
            if len(v) != len(names):
                raise PayloadError(f"{where}.days.{day}: {len(names)} counts expected")
            pairs = list(zip(names, v, strict=True))
        elif isinstance(v, dict):
            if not all(isinstance(k, str) and k in known for k in v):
                raise PayloadError(f"{where}.days.{day}: unknown kind")
            pairs = list(v.items())
        else:
            raise PayloadError(f"{where}.days.{day}: a list or object of counts")
        days[day] = {
            k: _int(n, 0, MAX_COUNT, f"{where}.days.{day}.{k}") for k, n in pairs if k in known
        }
    missing = None
    if ack:
        m = d.get("missing", {})
        if not isinstance(m, dict) or len(m) > MAX_DAYS:
            raise PayloadError(f"{where}.missing: an object of at most {MAX_DAYS} days")
        missing = {}
        for day, ks in m.items():
            day = _day(day, tst, f"{where}.missing")
            if (
                not isinstance(ks, list)
                or len(ks) > MAX_KINDS
                or not all(isinstance(k, str) and _KIND.match(k) for k in ks)
            ):
                raise PayloadError(f"{where}.missing.{day}: a list of kind names")
            missing[day] = tuple(k for k in dict.fromkeys(ks) if k in known)
    ours = tuple(k for k in names if k in known)
    return Tally(tst, days, outbox, re_tst, missing, ours)
