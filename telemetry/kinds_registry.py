"""The registry of event kinds (:mod:`telemetry.kinds`): :func:`register` adds a kind
(its name, event class, topic and tally kinds must be new), and the kinds are looked up
by event, name, topic or tally kind."""

from __future__ import annotations

from typing import Any

from . import topics
from .kinds_model import EventKind

# --- the registry ---------------------------------------------------------------------

# Topics that carry no single event kind: never an event kind's topic.
RESERVED_TOPICS = ("status", "track", *topics.CONTROL_KINDS, topics.BRIDGE_KIND)

_BY_NAME: dict[str, EventKind] = {}
_BY_CLASS: dict[type, EventKind] = {}
_BY_TOPIC: dict[str, EventKind] = {}


def register(kind: EventKind) -> EventKind:
    """Add ``kind``; its name, event class, topic and tally kinds must be new."""
    taken = (
        kind.name in _BY_NAME
        or kind.event in _BY_CLASS
        or kind.topic in _BY_TOPIC
        or kind.topic in RESERVED_TOPICS
        or any(for_tally(t) is not None for t in kind.tally)
    )
    if taken:
        raise ValueError(f"event kind {kind.name!r}: its name, class, topic or tally is taken")
    _BY_NAME[kind.name] = kind
    _BY_CLASS[kind.event] = kind
    _BY_TOPIC[kind.topic] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a kind (tests register throwaway kinds)."""
    kind = _BY_NAME.pop(name)
    del _BY_CLASS[kind.event]
    del _BY_TOPIC[kind.topic]


def registered() -> tuple[EventKind, ...]:
    return tuple(_BY_NAME.values())


def of(ev: Any) -> EventKind:
    """The kind of event ``ev``; TypeError if it is none."""
    kind = _BY_CLASS.get(type(ev))
    if kind is None:
        raise TypeError(f"not an event: {ev!r}")
    return kind


def named(name: str) -> EventKind | None:
    return _BY_NAME.get(name)


def for_topic(topic: str) -> EventKind | None:
    return _BY_TOPIC.get(topic)


def for_tally(tally_kind: str) -> tuple[EventKind, str] | None:
    """The kind a tally kind counts, with its extra SQL condition."""
    for kind in _BY_NAME.values():
        if tally_kind in kind.tally:
            return kind, kind.tally[tally_kind]
    return None
