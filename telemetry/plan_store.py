"""Storing and reading tour plans (table ``plans``, migration 0006; see telemetry/plan.py).

The hub is the system of record: staff edit a van's plan there (``kiosk/staff_plan.py``),
every saved change is a new version (:func:`change_plan`: atomic, validated, old
exceptions pruned), and the plan's JSON (:meth:`Plan.to_json`) is published retained on
``<prefix>/<van>/plan``. The box stores each newer version it receives
(:func:`receive_plan`, :func:`save_plan`, :func:`is_newer`) and uses the newest one for
the kiosk's next stops, stop detection and the public map; without any, the
``[[tour.stops]]`` of the TOML are the initial plan (:func:`current_plan`).

Reading a plan parses its JSON once per van and body: the parsed plans of a whole fleet
are remembered (least recently used forgotten first), as pages read every van's plan on
each request.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from .config import TourStop
from .errors import PlanError
from .plan_limits import KEEP_PAST_DAYS, MAX_EXCEPTIONS, MAX_JSON, VAN_RE
from .plan_model import Plan, exception_groups

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger("vanbox.plan")


def _conn_of(store_or_conn: Store | sqlite3.Connection) -> sqlite3.Connection:
    if isinstance(store_or_conn, sqlite3.Connection):
        return store_or_conn
    return store_or_conn.reader()


def stored_plan(store_or_conn: Store | sqlite3.Connection, van: str) -> Plan | None:
    """The newest stored plan of ``van`` (the one stored last), or None."""
    conn = _conn_of(store_or_conn)
    try:
        r = conn.execute(
            "SELECT body FROM plans WHERE van = ? ORDER BY rowid DESC LIMIT 1", (van,)
        ).fetchone()
    except sqlite3.OperationalError:  # no plans table (an old schema)
        return None
    if r is None:
        return None
    return _parsed(van, r[0])


# The parsed plans by van: (the body parsed, the plan), least recently used first. One
# entry per van (a changed plan replaces its older version), large enough for a fleet:
# the staff today page and the public map read every van's plan on each request, and a
# 64-entry cache re-parsed most of 1,000 vans' plans every time.
_CACHE: OrderedDict[str, tuple[str, Plan]] = OrderedDict()
_CACHE_MAX = 4096
_CACHE_LOCK = threading.Lock()


def clear_cache() -> None:
    """Forget the parsed plans (the next read of each plan parses it again)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _parsed(van: str, body: str) -> Plan:
    """``Plan.from_json(body, van=van)``, remembered: pages read the same plans on every
    request. A changed plan has another body and is parsed again."""
    with _CACHE_LOCK:
        hit = _CACHE.get(van)
        if hit is not None and hit[0] == body:
            _CACHE.move_to_end(van)
            return hit[1]
    plan = Plan.from_json(body, van=van)
    with _CACHE_LOCK:
        _CACHE[van] = (body, plan)
        _CACHE.move_to_end(van)
        while len(_CACHE) > _CACHE_MAX:
            _CACHE.popitem(last=False)
    return plan


def current_plan(
    store_or_conn: Store | sqlite3.Connection,
    van: str,
    fallback_tour: Iterable[TourStop] = (),
    tz: Any = None,
) -> Plan:
    """The newest stored plan of ``van``, else the plan from the TOML tour (version 0)."""
    return stored_plan(store_or_conn, van) or Plan.from_tour(van, fallback_tour)


def stored_version(conn: sqlite3.Connection, van: str) -> int:
    r = conn.execute("SELECT max(version) FROM plans WHERE van = ?", (van,)).fetchone()
    return int(r[0]) if r and r[0] is not None else 0


CLOCK_SLACK_S = 300.0  # a hub clock stepped back by less than this still counts as newer


def is_newer(plan: Plan, than: tuple[int, float] | None) -> bool:
    """Does ``plan`` replace the one stored as (version, updated)? Saved later on the
    hub's clock, or a higher version saved (about) as late. A hub restored from a backup
    starts again at a lower version, but its next change is saved later than anything
    the box has, so the box takes it; an old plan the broker still held is not taken
    back."""
    if than is None:
        return True
    version, updated = than
    if plan.updated > updated:
        return True
    return plan.version > version and plan.updated >= updated - CLOCK_SLACK_S


def save_plan(store: Store, plan: Plan) -> bool:
    """Store ``plan`` if it is newer than the stored one (:func:`is_newer`; the box, on
    receipt). Returns whether it was stored."""
    plan.validate()
    body = _body(plan)
    with store.transaction() as conn:
        r = conn.execute(
            "SELECT version, updated FROM plans WHERE van = ? ORDER BY rowid DESC LIMIT 1",
            (plan.van,),
        ).fetchone()
        if not is_newer(plan, (int(r[0]), float(r[1])) if r else None):
            return False
        # A restored hub's version may already be here: the new text replaces it, and as
        # the row stored last it is the current plan.
        conn.execute("DELETE FROM plans WHERE van = ? AND version = ?", (plan.van, plan.version))
        conn.execute(
            "INSERT INTO plans (van, version, updated, body) VALUES (?, ?, ?, ?)",
            (plan.van, plan.version, plan.updated, body),
        )
    return True


def change_plan(
    store: Store,
    van: str,
    edit: Callable[[Plan], Plan],
    *,
    fallback_tour: Iterable[TourStop] = (),
    known_vans: Iterable[str] | None = None,
    now: float | None = None,
) -> Plan:
    """Apply one staff change atomically: read the newest plan of ``van``, ``edit`` it
    (one of the ``Plan.with_*``/``without_*`` methods), store the result as the next
    version. A PlanError from ``edit`` leaves the stored plan unchanged. ``now`` (UTC
    epoch seconds, default the wall clock) is today for what the plan keeps."""
    if known_vans is not None and van not in set(known_vans):
        raise PlanError(f"van: unknown van {van!r}")
    if not VAN_RE.fullmatch(van):
        raise PlanError(f"van: {van!r} is not a van id")
    today = date.fromtimestamp(time.time() if now is None else now)
    with store.transaction() as conn:
        current = current_plan(conn, van, fallback_tour)
        base = _pruned(current, MAX_EXCEPTIONS, today)
        top = stored_version(conn, van)
        if base.version < top:  # cannot happen with one writer; be safe
            raise PlanError("version: the plan changed meanwhile; reload and try again")
        try:
            new = edit(base)
        except PlanError:
            if len(base.exceptions) < MAX_EXCEPTIONS:
                raise
            # a full plan: room for one more, from its oldest past exceptions
            base = _pruned(current, MAX_EXCEPTIONS - 1, today)
            new = edit(base)
        if new.van != van or new.version != base.version + 1:
            raise PlanError("version: an edit must give the next version of the same van")
        new = _pruned(new, MAX_EXCEPTIONS, date.fromtimestamp(new.updated))  # its own day
        new.validate()
        body = _body(new)
        conn.execute(
            "INSERT INTO plans (van, version, updated, body) VALUES (?, ?, ?, ?)",
            (new.van, new.version, new.updated, body),
        )
    return new


def _pruned(plan: Plan, limit: int, today: date) -> Plan:
    """``plan`` without what no report needs any more: ended stops and past exceptions
    stay for this year's and last year's reports (the annual report's planned visits:
    a cancellation or a holiday forgotten would count as planned and not served). Only a
    plan that would keep more than ``limit`` exceptions drops those older than
    KEEP_PAST_DAYS, oldest first (an extra visit with its changes, as one)."""
    last_year = date(today.year - 1, 1, 1)
    out = plan.pruned(last_year, stops_before=last_year)
    if len(out.exceptions) <= limit:
        return out
    cut = today - timedelta(days=KEEP_PAST_DAYS)
    old = sorted(((last, g) for last, g in exception_groups(out.exceptions) if last < cut),
                 key=lambda lg: lg[0])  # fmt: skip
    drop: set[str] = set()
    for _last, group in old:
        if len(out.exceptions) - len(drop) <= limit:
            break
        drop |= {e.id for e in group}
    return replace(out, exceptions=tuple(e for e in out.exceptions if e.id not in drop))


def _body(plan: Plan) -> str:
    body = plan.to_json()
    if len(body.encode("utf-8")) > MAX_JSON:
        raise PlanError(
            f"plan: {len(body)} characters, at most {MAX_JSON}; remove old exceptions first"
        )
    return body


def plan_vans(store_or_conn: Store | sqlite3.Connection) -> list[str]:
    """Every van with a stored plan."""
    conn = _conn_of(store_or_conn)
    try:
        return [r[0] for r in conn.execute("SELECT DISTINCT van FROM plans ORDER BY van")]
    except sqlite3.OperationalError:
        return []


# --- the box: a plan received from the hub ---------------------------------------------


def receive_plan(store: Store, van: str, payload: bytes | str, *, topic: str = "") -> Plan | None:
    """Store a plan received on ``<prefix>/<van>/plan`` if it is newer than the stored
    one; returns it then, else None. A malformed plan (or one for another van) is logged
    and kept as a dead letter (source "mqtt"); the stored plan stays as it was. An empty
    payload (a cleared retained message) is ignored."""
    from . import deadletter

    if not payload:
        return None
    try:
        plan = Plan.from_json(payload, van=van)
    except PlanError as e:
        deadletter.add(store, "mqtt", f"plan: {e}", payload=payload, van=van, topic=topic)
        return None
    if not save_plan(store, plan):
        log.debug("plan %s v%d: not newer than the stored one", van, plan.version)
        return None
    log.info("plan %s: version %d stored", van, plan.version)
    return plan
