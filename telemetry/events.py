"""Plain event objects: what drivers and the kiosk hand to the store.

Every event gets a globally unique id when it is created, so a receiver can
de-duplicate redeliveries. Positions, counts and stop visits get a time-ordered UUIDv7.
A check-in gets a random UUIDv4 (issue 12.5): a UUIDv7 carries its creation time to the
millisecond, which would defeat the check-in's time rounded to the hour. Check-ins are
ordered by their stored hour, never by id. Old check-in ids (UUIDv7, before migration
0005) are mapped to a UUIDv4 by :func:`checkin_id`, deterministically, so box, hub and a
re-sent old payload all arrive at the same new id.
The van id is filled in by the store that records the event (``van=""`` until then).
How each class is stored, published and decoded is said once, by its entry in
:mod:`telemetry.kinds`.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import uuid6


def new_id() -> str:
    """A new UUIDv7 as a 36-character string; ids created later sort later."""
    return str(uuid6.uuid7())


def new_checkin_id() -> str:
    """A new random UUIDv4: a check-in id says nothing about when it was made."""
    return str(uuid.uuid4())


def checkin_id(old: str) -> str:
    """The check-in id to store for ``old``: unchanged unless it is a timed UUID (version
    1, 6 or 7), which becomes the UUIDv4 made from ``sha256(old)`` (version and variant
    bits set). Deterministic, so every database maps an old id to the same new one."""
    if len(old) != 36 or old[14] not in "167" or old[8] != "-":
        return old
    digest = hashlib.sha256(old.lower().encode("ascii", "replace")).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_epoch(t: datetime) -> float:
    if t.tzinfo is None:
        raise ValueError("naive datetime: vanbox works in UTC-aware datetimes only")
    return t.timestamp()


def from_epoch(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def iso_utc(t: datetime) -> str:
    """ISO 8601 UTC with milliseconds, like gpsd: ``2019-04-07T00:02:31.420Z``."""
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


# Footfall kinds. ``in``/``out`` come from a beam pair (direction known), ``pass`` from a
# single beam or a door opening (direction unknown).
COUNT_KINDS = ("in", "out", "pass")
SENSOR_KINDS = ("sensor_blocked", "sensor_ok")
FOOTFALL_KINDS = COUNT_KINDS + SENSOR_KINDS

FIX_MODES = {1: "no fix", 2: "2D", 3: "3D"}


@dataclass(frozen=True)
class Position:
    """One GPS fix worth keeping (mode 2 or 3)."""

    time: datetime
    lat: float
    lon: float
    mode: int = 3
    alt: float | None = None
    speed: float | None = None  # m/s
    track: float | None = None  # degrees true
    hdop: float | None = None
    sats: int | None = None
    suspect: bool = False  # flagged by the jump/HDOP filter: stored, never shown live
    id: str = field(default_factory=new_id)
    van: str = ""

    kind = "position"


@dataclass(frozen=True)
class Footfall:
    """A count at the door (``in``, ``out``, ``pass``) or a sensor state change.

    ``occupancy`` is the number of people inside after this event, as the sensor
    logic tracks it (only meaningful for a beam pair; 0 otherwise).
    """

    time: datetime
    kind: str
    sensor: str = "door"
    occupancy: int = 0
    id: str = field(default_factory=new_id)
    van: str = ""

    def __post_init__(self) -> None:
        if self.kind not in FOOTFALL_KINDS:
            raise ValueError(f"unknown footfall kind {self.kind!r}; use one of {FOOTFALL_KINDS}")

    @property
    def is_count(self) -> bool:
        return self.kind in COUNT_KINDS


@dataclass(frozen=True)
class CheckIn:
    """An anonymous check-in on the touchscreen: categories only, time rounded to the hour."""

    time: datetime
    age_group: str
    topics: tuple[str, ...] = ()
    first_visit: bool | None = None
    heard_from: str | None = None
    language: str | None = None
    id: str = field(default_factory=new_checkin_id)
    van: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.id, str):
            mapped = checkin_id(self.id)
            if mapped != self.id:  # an old, timed id (a re-sent payload from before 0005)
                object.__setattr__(self, "id", mapped)
        if self.time.minute or self.time.second or self.time.microsecond:
            object.__setattr__(self, "time", self.time.replace(minute=0, second=0, microsecond=0))


@dataclass(frozen=True)
class StopVisit:
    """The van stood at a place: a planned stop of the tour or an unplanned one.

    ``left`` is ``None`` while the van is still there. Recorded again (same id) when it
    leaves, so a receiver upserts it.
    """

    arrived: datetime
    name: str
    municipality: str
    lat: float
    lon: float
    planned: bool = True
    left: datetime | None = None
    id: str = field(default_factory=new_id)
    van: str = ""

    @property
    def time(self) -> datetime:
        return self.arrived


def new_hub_contact_id() -> str:
    """A random UUID of version 8 (RFC 9562, "custom"): the id of a contact recorded on
    the hub. Boxes make version 4 ids, so the reconciliation tally counts only the
    contacts a box made (telemetry/contacts.py)."""
    raw = bytearray(uuid.uuid4().bytes)
    raw[6] = (raw[6] & 0x0F) | 0x80
    return str(uuid.UUID(bytes=bytes(raw)))


@dataclass(frozen=True)
class Contact:
    """An anonymous counselling contact recorded by staff (telemetry/contacts.py checks
    every field). Codes only, no name, no free text, no place but a municipality; the time
    is rounded down to the hour and the id is random (it says nothing about the time)."""

    time: datetime
    kind: str
    topics: tuple[str, ...]
    duration: str
    age_group: str
    municipality: str
    first_contact: bool
    referrals: tuple[str, ...]
    outcome: str
    persons: int = 1
    id: str = field(default_factory=new_checkin_id)
    van: str = ""

    def __post_init__(self) -> None:
        if self.time.minute or self.time.second or self.time.microsecond:
            object.__setattr__(self, "time", self.time.replace(minute=0, second=0, microsecond=0))


# the built-in kinds (telemetry/kinds.py)
Event = Position | Footfall | CheckIn | StopVisit | Contact
