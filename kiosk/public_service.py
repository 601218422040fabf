"""Service hours on the public map: what the public may see of a van depends on whether
the van is *in service* right now.

A van is in service from ``LEAD`` before its first (not cancelled) visit of the day until
the end of its last one. Outside that window the public sees a parked van: the state
``closed`` with the day's wording ("Heute ab 14:00 Uhr geöffnet", "Heute keine Sprechzeit
mehr", "Heute keine Sprechzeit") and its next stop, and nothing else: no position, no
online/offline, no "last seen" (switching the box on in the evening must not show).
Inside the window "last seen" is kept only when the van does not report (``offline``);
next to "Jetzt geöffnet" it would only look stale. Before the first visit has begun a
box that is not yet on is ``closed`` (later today), never "no connection".

Each van's next visit that takes place (not cancelled) is marked ``is_next`` in its list,
and the map's stop of that visit ``next``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from telemetry.plan import Plan

LEAD = timedelta(minutes=30)  # the van may drive to its first stop this long before
CLOSED_FIELDS = ("position", "stop", "open_since", "open_until", "last_seen", "status")


def _local_iso(t: datetime, tz) -> str:
    return t.astimezone(tz).isoformat(timespec="minutes")


def service_view(view: dict[str, Any], plan: Plan, tz, now: datetime) -> dict[str, Any]:
    """``view`` (from :func:`telemetry.privacy.public_view`) as the public may see it at
    ``now``: see the module's text. Returns a new dict."""
    out = dict(view)
    out["next"] = [dict(n) for n in view.get("next", [])]
    out["closed"] = None
    out["later_at"] = None
    today = [v for v in plan.visits_on(now.astimezone(tz).date(), tz) if not v.cancelled]
    first = min((v.start for v in today), default=None)
    last = max((v.end for v in today), default=None)
    state = view.get("state")
    if state == "open":
        in_service = True
    elif first is None or last is None or now >= last:
        in_service = False
    elif state == "offline":
        in_service = now >= first
    else:
        in_service = now >= first - LEAD
    if not in_service:
        if first is None:
            kind = "none"
        elif last is not None and now >= last:
            kind = "closed"
        else:
            kind = "later"
            out["later_at"] = _local_iso(first, tz)
        for key in CLOSED_FIELDS:
            out[key] = None
        out["state"] = "closed"
        out["closed"] = kind
    elif state != "offline":
        out["last_seen"] = None
    for n in out["next"]:
        n["is_next"] = False
    for n in out["next"]:
        if n.get("status") != "cancelled":
            n["is_next"] = True
            break
    return out


def mark_next_stops(stops: list[dict[str, Any]], views: list[dict[str, Any]]) -> None:
    """Mark the map's stops that are some shown van's next stop (``next: True``)."""
    names = {n["name"] for v in views for n in v["next"] if n.get("is_next")}
    for s in stops:
        s["next"] = s["name"] in names
