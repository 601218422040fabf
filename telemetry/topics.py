"""MQTT topics and payloads: the one place that knows the wire format.

Topics (``<prefix>`` is ``mqtt.topic_prefix``, default ``vanbox``)::

    <prefix>/<van>/status    online | offline            retained, last will
    <prefix>/<van>/location  OwnTracks _type=location    retained, the latest fix
    <prefix>/<van>/track     {"tid","points":[...]}       past fixes in a batch (backlog)
    <prefix>/<van>/footfall  one count or sensor event, with today's totals
    <prefix>/<van>/checkin   one anonymous check-in, time rounded to the hour
    <prefix>/<van>/stop      a stop visit (sent on arrival and again on leaving, same id)
    <prefix>/<van>/contact   a counselling contact recorded by staff, time rounded to the
                             hour (telemetry/contacts.py: its encoder and decoder)
    <prefix>/<van>/bridge    1 | 0  retained: the van's mosquitto bridge is connected or not
                             (its notification topic; the central broker publishes the
                             bridge's last will "0" when the link or the van's power dies)

Control topics (not events: ``decode`` bounds their size and nesting and wants a JSON
object; their fields are checked where they are handled)::

    <prefix>/<van>/tally     box -> hub, retained: the box's per-day totals per kind
    <prefix>/<van>/ack       hub -> box, retained: what the hub holds, what it misses
    <prefix>/<van>/plan      hub -> box, retained: the van's current tour plan

Payloads are compact UTF-8 JSON. Every event payload carries the event's ``id``
(UUIDv7), so a receiver stores each event once however often it is delivered.
``encode_*`` builds payload dicts from events; ``decode`` turns a received message back
into events (used by the hub); both live here so they cannot drift apart. Which encoder
and decoder belong to which kind of event (and topic) is said once, in
:mod:`telemetry.kinds`.

``decode`` is the hub's boundary: every payload is checked here once, with bounds (size,
JSON nesting depth, strict UTF-8 without lone surrogates, canonical UUID ids, times in
[2000-01-01, now + FUTURE_S (10 min)], coordinates, counts and codes in range, category codes only
from :mod:`telemetry.categories`). Whatever passes can be stored; whatever does not
raises :class:`PayloadError` with the reason, and the hub keeps it as a dead letter. A
track batch is checked point by point: a bad point is returned in ``Message.rejected``
and the good ones are kept.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from . import categories
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
# The van's bridge state (mosquitto's notification topic): not an event, a status.
BRIDGE_KIND = "bridge"
KINDS = EVENT_KINDS + CONTROL_KINDS + (BRIDGE_KIND,)
ONLINE, OFFLINE = "online", "offline"
BRIDGE_STATES = {"1": ONLINE, "0": OFFLINE}
# Rough 1-sigma horizontal error per unit of HDOP (user equivalent range error), metres.
UERE_M = 5.0


def _event_topic(kind: str) -> bool:
    """Is ``kind`` the topic of a registered event kind (telemetry/kinds.py)?"""
    from . import kinds  # kinds imports this module (its encoders and decoders)

    return kinds.for_topic(kind) is not None


def topic(prefix: str, van: str, kind: str) -> str:
    if kind not in KINDS and not _event_topic(kind):
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
    # Optional fields go out only within the bounds the hub's decoder takes (the same
    # constants): a fix the box stores must never be refused whole on the hub.
    if p.hdop is not None and 0 <= round(p.hdop, 1) <= HDOP_MAX:
        d["acc"] = max(1, round(p.hdop * UERE_M))
        d["hdop"] = round(p.hdop, 1)
    if p.alt is not None and ALT_MIN_M <= round(p.alt) <= ALT_MAX_M:
        d["alt"] = round(p.alt)
    if p.speed is not None and 0 <= round(p.speed * 3.6) <= VEL_MAX_KMH:
        d["vel"] = round(p.speed * 3.6)  # OwnTracks: km/h
    if p.track is not None:
        d["cog"] = round(p.track) % 360
    if p.sats is not None and 0 <= p.sats <= SATS_MAX:
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


# --- decoding: the hub's boundary ----------------------------------------------------

# Bounds. A track batch of 50 points is about 8.4 kB; 500 points fit in 128 kB.
MAX_PAYLOAD = 8 * 1024  # one event or a status
MAX_TRACK_PAYLOAD = 128 * 1024
MAX_CONTROL_PAYLOAD = 256 * 1024  # the broker's max_packet_size
MAX_DEPTH = 6  # events: {"points": [{...}]} is 3 deep
MAX_CONTROL_DEPTH = 32
MAX_TRACK_POINTS = 500  # publish.track_batch is capped to this in telemetry/config.py
# Bounds of a position's optional fields (the encoder leaves out what is outside them).
VEL_MAX_KMH = 1000
HDOP_MAX = 99.9
ALT_MIN_M, ALT_MAX_M = -1000, 20_000
SATS_MAX = 99
MAX_TEXT = 120  # a stop's name or municipality
MAX_STRING = 200  # any other string in an event payload (ignored fields included)
TIME_MIN = 946_684_800.0  # 2000-01-01T00:00:00Z
FUTURE_S = 10 * 60.0  # a van's clock may run ahead a little (GPS vs NTP), not by more
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
VAN_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}\Z")  # as van.id in the config
_STRING_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_BRACKET_RE = re.compile(r"[\[\]{}]")
_CONTROL_CHAR_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class Rejected:
    """A part of a message refused at the boundary (a bad point of a track batch)."""

    reason: str
    payload: str


@dataclass(frozen=True)
class Message:
    """A received message, decoded: the van, the topic kind, and its events or status."""

    van: str
    kind: str
    events: tuple[Event, ...] = ()
    status: str | None = None
    control: dict[str, Any] | None = None  # the JSON object of a control topic
    rejected: tuple[Rejected, ...] = ()  # parts refused (track points), for dead letters


def parse_topic(t: str, prefix: str) -> tuple[str, str]:
    parts = t.split("/")
    pre = prefix.split("/")
    if len(parts) != len(pre) + 2 or parts[: len(pre)] != pre:
        raise PayloadError(f"{t[:200]}: not a vanbox topic under {prefix}/")
    van, kind = parts[-2], parts[-1]
    if kind not in KINDS and not _event_topic(kind):
        raise PayloadError(f"{t[:200]}: unknown topic kind {kind[:40]!r}")
    if not VAN_RE.match(van):
        raise PayloadError(f"{t[:200]}: {van[:60]!r} is not a van id")
    return van, kind


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in ``text`` (strings skipped), without parsing
    it: checked before :func:`json.loads`, whose recursion a deep payload would exhaust."""
    depth = deepest = 0
    for m in _BRACKET_RE.finditer(_STRING_RE.sub('""', text)):
        if m.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        raise ValueError("duplicate key")
    return d


def _check_strings(v: Any, where: str, limit: int | None) -> None:
    """Every string in a parsed payload (keys too) is valid UTF-8 (no lone surrogate
    from a ``\\ud800`` escape) and, for events, short and free of control characters."""
    stack = [v]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            stack.extend(x.keys())
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
        elif isinstance(x, str):
            try:
                x.encode("utf-8")
            except UnicodeEncodeError:
                raise PayloadError(f"{where}: a string holds a lone surrogate") from None
            if limit is not None:
                if len(x) > limit:
                    raise PayloadError(f"{where}: a string is longer than {limit} characters")
                if _CONTROL_CHAR_RE.search(x):
                    raise PayloadError(f"{where}: a string holds a control character")


def _load(t: str, text: str, *, max_depth: int, limit: int | None) -> dict[str, Any]:
    if json_depth(text) > max_depth:
        raise PayloadError(f"{t}: JSON nested deeper than {max_depth}")
    try:
        d = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as e:
        raise PayloadError(f"{t}: payload is not JSON ({str(e)[:80]})") from None
    if not isinstance(d, dict):
        raise PayloadError(f"{t}: payload must be a JSON object")
    _check_strings(d, t, limit)
    return d


def _get(d: dict, key: str, typ: type | tuple, *, required: bool = True, where: str = ""):
    if key not in d or d[key] is None:
        if required:
            raise PayloadError(f"{where}: missing {key!r}")
        return None
    v = d[key]
    if typ in (int, float, (int, float)) and (
        isinstance(v, bool) or not isinstance(v, int | float)
    ):
        raise PayloadError(f"{where}: {key!r} must be a number, got {str(v)[:40]!r}")
    if typ is int and not isinstance(v, int):
        raise PayloadError(f"{where}: {key!r} must be a whole number, got {v!r}")
    if typ in (int, float, (int, float)) and isinstance(v, float) and not math.isfinite(v):
        raise PayloadError(f"{where}: {key!r} must be finite")
    if typ is str and not isinstance(v, str):
        raise PayloadError(f"{where}: {key!r} must be a string")
    if typ is bool and not isinstance(v, bool):
        raise PayloadError(f"{where}: {key!r} must be true or false")
    return v


def _num(d: dict, key: str, lo: float, hi: float, *, where: str, integer: bool = False,
         required: bool = False) -> Any:  # fmt: skip
    v = _get(d, key, int if integer else float, required=required, where=where)
    # Compare as given (an int of any size compares exactly), so 10**30 cannot overflow.
    if v is not None and not lo <= v <= hi:
        raise PayloadError(f"{where}: {key!r} = {str(v)[:30]} is out of range [{lo}, {hi}]")
    return v


def _time(d: dict, key: str, now: float, *, where: str, required: bool = True):
    v = _get(d, key, float, required=required, where=where)
    if v is None:
        return None
    if not TIME_MIN <= v <= now + FUTURE_S:
        raise PayloadError(
            f"{where}: {key!r} = {str(v)[:30]} is not a time between 2000-01-01 and "
            f"{FUTURE_S / 60:g} minutes ahead"
        )
    return from_epoch(float(v))


def _id(d: dict, where: str) -> str:
    v = _get(d, "id", str, where=where)
    if not UUID_RE.match(v):
        raise PayloadError(f"{where}: 'id' must be a UUID in canonical form, got {v[:40]!r}")
    return v


def _code(d: dict, key: str, codes: tuple[str, ...], *, where: str, required: bool = False):
    v = _get(d, key, str, required=required, where=where)
    if v is not None and v not in codes:
        raise PayloadError(f"{where}: {key!r} = {v[:40]!r} is not one of {', '.join(codes)}")
    return v


def _text(d: dict, key: str, where: str) -> str:
    v = _get(d, key, str, where=where).strip()
    if not v or len(v) > MAX_TEXT:
        raise PayloadError(f"{where}: {key!r} must have 1 to {MAX_TEXT} characters")
    return v


def _latlon(d: dict, where: str) -> tuple[float, float]:
    lat = _get(d, "lat", float, where=where)
    lon = _get(d, "lon", float, where=where)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        raise PayloadError(f"{where}: no valid position ({str(lat)[:30]}, {str(lon)[:30]})")
    return float(lat), float(lon)


def _position(d: Any, van: str, where: str, now: float) -> Position:
    if not isinstance(d, dict):
        raise PayloadError(f"{where}: a point must be a JSON object")
    lat, lon = _latlon(d, where)
    vel = _num(d, "vel", 0, VEL_MAX_KMH, where=where)  # km/h
    mode = _num(d, "mode", 2, 3, where=where, integer=True)
    hdop = _num(d, "hdop", 0, HDOP_MAX, where=where)
    alt = _num(d, "alt", ALT_MIN_M, ALT_MAX_M, where=where)
    cog = _num(d, "cog", 0, 360, where=where)
    sats = _num(d, "sats", 0, SATS_MAX, where=where, integer=True)
    return Position(
        time=_time(d, "tst", now, where=where),
        lat=lat,
        lon=lon,
        mode=2 if mode is None else int(mode),
        alt=None if alt is None else float(alt),
        speed=None if vel is None else float(vel) / 3.6,
        track=None if cog is None else float(cog),
        hdop=None if hdop is None else float(hdop),
        sats=None if sats is None else int(sats),
        id=_id(d, where),
        van=van,
    )


def _footfall(d: dict, van: str, t: str, now: float) -> Footfall:
    return Footfall(
        time=_time(d, "tst", now, where=t),
        kind=_code(d, "kind", FOOTFALL_KINDS, where=t, required=True),
        sensor=_code(d, "sensor", categories.SENSORS, where=t) or "door",
        occupancy=int(_num(d, "occupancy", 0, 10_000, where=t, integer=True) or 0),
        id=_id(d, t),
        van=van,
    )


def _checkin(d: dict, van: str, t: str, now: float) -> CheckIn:
    codes = d.get("topics") or []
    if not isinstance(codes, list) or not all(isinstance(x, str) for x in codes):
        raise PayloadError(f"{t}: 'topics' must be a list of strings")
    if len(set(codes)) != len(codes) or not set(codes) <= set(categories.TOPICS):
        raise PayloadError(f"{t}: 'topics' must be distinct codes of {categories.TOPICS}")
    return CheckIn(
        time=_time(d, "tst", now, where=t),
        age_group=_code(d, "age_group", categories.AGE_GROUPS, where=t, required=True),
        topics=tuple(codes),
        first_visit=_get(d, "first_visit", bool, required=False, where=t),
        heard_from=_code(d, "heard_from", categories.HEARD_FROM, where=t),
        language=_code(d, "lang", categories.LANGUAGES, where=t),
        id=_id(d, t),
        van=van,
    )


def _stop(d: dict, van: str, t: str, now: float) -> StopVisit:
    lat, lon = _latlon(d, t)
    arrived = _time(d, "arrived", now, where=t)
    left = _time(d, "left", now, where=t, required=False)
    if left is not None and left < arrived:
        raise PayloadError(f"{t}: 'left' is before 'arrived'")
    return StopVisit(
        arrived=arrived,
        name=_text(d, "name", t),
        municipality=_text(d, "municipality", t),
        lat=lat,
        lon=lon,
        planned=bool(_get(d, "planned", bool, required=False, where=t)),
        left=left,
        id=_id(d, t),
        van=van,
    )


def _track(d: dict, van: str, t: str, now: float) -> Message:
    pts = d.get("points")
    if not isinstance(pts, list):
        raise PayloadError(f"{t}: 'points' must be a list")
    if len(pts) > MAX_TRACK_POINTS:
        raise PayloadError(f"{t}: more than {MAX_TRACK_POINTS} points in one batch")
    good: list[Event] = []
    bad: list[Rejected] = []
    for i, p in enumerate(pts):
        try:
            good.append(_position(p, van, f"{t} point {i}", now))
        except PayloadError as e:
            bad.append(Rejected(str(e), dumps(p)[:MAX_PAYLOAD]))
    return Message(van, "track", tuple(good), rejected=tuple(bad))


def decode(
    t: str, payload: bytes | str, prefix: str = "vanbox", *, now: float | None = None
) -> Message:
    """Decode one received message; raises :class:`PayloadError` on anything malformed
    or out of bounds. ``now`` (default: the clock) bounds event times from above."""
    van, kind = parse_topic(t, prefix)
    now = time.time() if now is None else now
    cap = (
        MAX_CONTROL_PAYLOAD
        if kind in CONTROL_KINDS
        else MAX_TRACK_PAYLOAD
        if kind == "track"
        else MAX_PAYLOAD
    )
    if len(payload) > cap:
        raise PayloadError(f"{t}: payload of {len(payload)} bytes is larger than {cap}")
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise PayloadError(f"{t}: payload is not UTF-8") from None
    else:
        try:
            payload.encode("utf-8")
        except UnicodeEncodeError:
            raise PayloadError(f"{t}: payload is not UTF-8 (a lone surrogate)") from None
    if kind == "status":
        if payload not in (ONLINE, OFFLINE):
            raise PayloadError(f"{t}: status must be online or offline, got {payload[:40]!r}")
        return Message(van, kind, status=payload)
    if kind == BRIDGE_KIND:
        if payload not in BRIDGE_STATES:
            raise PayloadError(f"{t}: bridge state must be 1 or 0, got {payload[:40]!r}")
        return Message(van, kind, status=BRIDGE_STATES[payload])
    if kind in CONTROL_KINDS:
        d = _load(t, payload, max_depth=MAX_CONTROL_DEPTH, limit=None)
        return Message(van, kind, control=d)
    d = _load(t, payload, max_depth=MAX_DEPTH, limit=MAX_STRING)
    if kind == "track":
        return _track(d, van, t, now)
    from . import kinds  # kinds imports this module (its encoders and decoders)

    ek = kinds.for_topic(kind)
    if ek is None:  # an event topic whose kind is not registered: a programming error
        raise PayloadError(f"{t}: no event kind is registered for topic {kind!r}")
    return Message(van, kind, (ek.decode(d, van, t, now),))
