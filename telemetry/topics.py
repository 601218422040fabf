"""MQTT topics and payloads: the one place that knows the wire format.

Topics (``<prefix>`` is ``mqtt.topic_prefix``, default ``vanbox``)::

    <prefix>/<van>/status    online | offline            retained, last will
    <prefix>/<van>/location  OwnTracks _type=location    retained, the latest fix
    <prefix>/<van>/track     {"tid","points":[...]}       past fixes in a batch (backlog)
    <prefix>/<van>/footfall  one count or sensor event, with today's totals
    <prefix>/<van>/checkin   one anonymous check-in, time rounded to the hour
    <prefix>/<van>/stop      a stop visit (sent on arrival and again on leaving, same id)

Control topics (not events; their payloads are checked where they are handled)::

    <prefix>/<van>/tally     box -> hub, retained: the box's per-day totals per kind
    <prefix>/<van>/ack       hub -> box, retained: what the hub holds, what it misses
    <prefix>/<van>/plan      hub -> box, retained: the van's current tour plan

Payloads are compact UTF-8 JSON. Every event payload carries the event's ``id``
(UUIDv7), so a receiver stores each event once however often it is delivered.
``encode_*`` builds payload dicts from events; ``decode`` turns a received message back
into events (used by the hub); both live here so they cannot drift apart.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from .errors import PayloadError
from .events import (
    FOOTFALL_KINDS,
    CheckIn,
    Event,
    Footfall,
    Position,
    StopVisit,
    from_epoch,
    to_epoch,
)

EVENT_KINDS = ("status", "location", "track", "footfall", "checkin", "stop")
CONTROL_KINDS = ("tally", "ack", "plan")
KINDS = EVENT_KINDS + CONTROL_KINDS
ONLINE, OFFLINE = "online", "offline"
# Rough 1-sigma horizontal error per unit of HDOP (user equivalent range error), metres.
UERE_M = 5.0


def topic(prefix: str, van: str, kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown topic kind {kind!r}")
    return f"{prefix}/{van}/{kind}"


def subscription(prefix: str) -> str:
    """What a hub subscribes to: every van's every topic."""
    return f"{prefix}/+/#"


def dumps(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# --- encoding ------------------------------------------------------------------------


def location_payload(p: Position, tid: str) -> dict[str, Any]:
    """A valid OwnTracks ``location`` message (plus ``id``, ``mode``, ``hdop``, ``sats``)."""
    d: dict[str, Any] = {
        "_type": "location",
        "id": p.id,
        "tid": tid,
        "tst": int(to_epoch(p.time)),
        "lat": round(p.lat, 6),
        "lon": round(p.lon, 6),
        "mode": p.mode,
    }
    if p.hdop is not None:
        d["acc"] = max(1, round(p.hdop * UERE_M))
        d["hdop"] = round(p.hdop, 1)
    if p.alt is not None:
        d["alt"] = round(p.alt)
    if p.speed is not None:
        d["vel"] = round(p.speed * 3.6)  # OwnTracks: km/h
    if p.track is not None:
        d["cog"] = round(p.track) % 360
    if p.sats is not None:
        d["sats"] = p.sats
    return d


def track_payload(points: list[dict[str, Any]], tid: str) -> dict[str, Any]:
    """A batch of location payloads (without ``_type``), oldest first."""
    return {"tid": tid, "points": [{k: v for k, v in p.items() if k != "_type"} for p in points]}


def footfall_payload(e: Footfall, today: dict[str, int]) -> dict[str, Any]:
    return {
        "id": e.id,
        "tst": round(to_epoch(e.time), 3),
        "kind": e.kind,
        "sensor": e.sensor,
        "occupancy": e.occupancy,
        "today": today,
    }


def checkin_payload(e: CheckIn) -> dict[str, Any]:
    return {
        "id": e.id,
        "tst": int(to_epoch(e.time)),
        "age_group": e.age_group,
        "topics": list(e.topics),
        "first_visit": e.first_visit,
        "heard_from": e.heard_from,
        "lang": e.language,
    }


def stop_payload(e: StopVisit) -> dict[str, Any]:
    return {
        "id": e.id,
        "name": e.name,
        "municipality": e.municipality,
        "lat": round(e.lat, 6),
        "lon": round(e.lon, 6),
        "planned": e.planned,
        "arrived": int(to_epoch(e.arrived)),
        "left": None if e.left is None else int(to_epoch(e.left)),
    }


# --- decoding ------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """A received message, decoded: the van, the topic kind, and its events or status."""

    van: str
    kind: str
    events: tuple[Event, ...] = ()
    status: str | None = None
    control: dict[str, Any] | None = None  # the JSON object of a control topic


def parse_topic(t: str, prefix: str) -> tuple[str, str]:
    parts = t.split("/")
    pre = prefix.split("/")
    if len(parts) != len(pre) + 2 or parts[: len(pre)] != pre:
        raise PayloadError(f"{t}: not a vanbox topic under {prefix}/")
    van, kind = parts[-2], parts[-1]
    if kind not in KINDS:
        raise PayloadError(f"{t}: unknown topic kind {kind!r}")
    return van, kind


def _get(d: dict, key: str, typ: type | tuple, *, required: bool = True, where: str = ""):
    if key not in d or d[key] is None:
        if required:
            raise PayloadError(f"{where}: missing {key!r}")
        return None
    v = d[key]
    if typ in (int, float, (int, float)) and (
        isinstance(v, bool) or not isinstance(v, int | float)
    ):
        raise PayloadError(f"{where}: {key!r} must be a number, got {v!r}")
    if typ in (int, float, (int, float)) and not math.isfinite(v):
        raise PayloadError(f"{where}: {key!r} must be finite")
    if typ is str and not isinstance(v, str):
        raise PayloadError(f"{where}: {key!r} must be a string")
    if typ is bool and not isinstance(v, bool):
        raise PayloadError(f"{where}: {key!r} must be true or false")
    return v


def _position(d: dict, van: str, where: str) -> Position:
    lat = _get(d, "lat", float, where=where)
    lon = _get(d, "lon", float, where=where)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        raise PayloadError(f"{where}: no valid position ({lat}, {lon})")
    hdop = _get(d, "hdop", float, required=False, where=where)
    vel = _get(d, "vel", float, required=False, where=where)
    return Position(
        time=from_epoch(_get(d, "tst", float, where=where)),
        lat=float(lat),
        lon=float(lon),
        mode=int(_get(d, "mode", int, required=False, where=where) or 2),
        alt=_get(d, "alt", float, required=False, where=where),
        speed=None if vel is None else vel / 3.6,
        track=_get(d, "cog", float, required=False, where=where),
        hdop=hdop,
        sats=_get(d, "sats", int, required=False, where=where),
        id=_get(d, "id", str, where=where),
        van=van,
    )


def decode(t: str, payload: bytes | str, prefix: str = "vanbox") -> Message:
    """Decode one received message; raises :class:`PayloadError` on anything malformed."""
    van, kind = parse_topic(t, prefix)
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise PayloadError(f"{t}: payload is not UTF-8") from None
    if kind == "status":
        if payload not in (ONLINE, OFFLINE):
            raise PayloadError(f"{t}: status must be online or offline, got {payload[:40]!r}")
        return Message(van, kind, status=payload)
    try:
        d = json.loads(payload)
    except ValueError:
        raise PayloadError(f"{t}: payload is not JSON") from None
    if not isinstance(d, dict):
        raise PayloadError(f"{t}: payload must be a JSON object")
    if kind in CONTROL_KINDS:
        return Message(van, kind, control=d)
    if kind == "location":
        return Message(van, kind, (_position(d, van, t),))
    if kind == "track":
        pts = d.get("points")
        if not isinstance(pts, list):
            raise PayloadError(f"{t}: 'points' must be a list")
        return Message(van, kind, tuple(_position(p, van, t) for p in pts if isinstance(p, dict)))
    if kind == "footfall":
        k = _get(d, "kind", str, where=t)
        if k not in FOOTFALL_KINDS:
            raise PayloadError(f"{t}: unknown footfall kind {k!r}")
        ev = Footfall(
            time=from_epoch(_get(d, "tst", float, where=t)),
            kind=k,
            sensor=_get(d, "sensor", str, required=False, where=t) or "door",
            occupancy=int(_get(d, "occupancy", int, required=False, where=t) or 0),
            id=_get(d, "id", str, where=t),
            van=van,
        )
        return Message(van, kind, (ev,))
    if kind == "checkin":
        topics = d.get("topics") or []
        if not isinstance(topics, list) or not all(isinstance(x, str) for x in topics):
            raise PayloadError(f"{t}: 'topics' must be a list of strings")
        ev = CheckIn(
            time=from_epoch(_get(d, "tst", float, where=t)),
            age_group=_get(d, "age_group", str, where=t),
            topics=tuple(topics),
            first_visit=_get(d, "first_visit", bool, required=False, where=t),
            heard_from=_get(d, "heard_from", str, required=False, where=t),
            language=_get(d, "lang", str, required=False, where=t),
            id=_get(d, "id", str, where=t),
            van=van,
        )
        return Message(van, kind, (ev,))
    # stop
    left = _get(d, "left", float, required=False, where=t)
    ev = StopVisit(
        arrived=from_epoch(_get(d, "arrived", float, where=t)),
        name=_get(d, "name", str, where=t),
        municipality=_get(d, "municipality", str, where=t),
        lat=float(_get(d, "lat", float, where=t)),
        lon=float(_get(d, "lon", float, where=t)),
        planned=bool(_get(d, "planned", bool, required=False, where=t)),
        left=None if left is None else from_epoch(left),
        id=_get(d, "id", str, where=t),
        van=van,
    )
    return Message(van, kind, (ev,))
