"""Dead letters: what can never be stored, kept aside with its reason.

Every boundary (NMEA decoder, MQTT payload decoder, the box's record path, HTTP forms)
validates its input once. What fails there and cannot be fixed by retrying (a value out
of every bound, a payload that is not the documented format) goes to the
``dead_letters`` table with the reason, is logged once and counted on ``/status``. It is
never retried and never blocks the events after it.

    add(store, "mqtt", "tst out of range", payload=b"...", van="jr-1", topic="vanbox/jr-1/location")
    count(store)            # how many in all
    recent(store, 20)       # the newest, for the status page
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger("vanbox.deadletter")

SOURCES = ("mqtt", "record", "nmea", "http")
PAYLOAD_MAX = 4096
REASON_MAX = 500


@dataclass(frozen=True)
class DeadLetter:
    seq: int
    at: float
    source: str
    van: str
    topic: str
    reason: str
    payload: bytes


def _clip(payload: bytes | str | None) -> bytes | None:
    if payload is None:
        return None
    if isinstance(payload, str):
        payload = payload.encode("utf-8", "backslashreplace")
    return bytes(payload[:PAYLOAD_MAX])


def _text(s: str, limit: int) -> str:
    """A column-safe string: no lone surrogates, bounded length."""
    return s.encode("utf-8", "backslashreplace").decode("utf-8")[:limit]


def add_in(
    conn: sqlite3.Connection,
    source: str,
    reason: str,
    *,
    payload: bytes | str | None = None,
    van: str = "",
    topic: str = "",
    at: float | None = None,
) -> None:
    """Insert one dead letter inside a transaction the caller holds."""
    if source not in SOURCES:
        raise ValueError(f"unknown dead-letter source {source!r}; use one of {SOURCES}")
    conn.execute(
        "INSERT INTO dead_letters (at, source, van, topic, reason, payload)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            time.time() if at is None else at,
            source,
            _text(van, 200),
            _text(topic, 300),
            _text(reason, REASON_MAX),
            _clip(payload),
        ),
    )


def add(
    store: Store,
    source: str,
    reason: str,
    *,
    payload: bytes | str | None = None,
    van: str = "",
    topic: str = "",
) -> None:
    """Keep one dead letter (its own transaction) and log it once."""
    log.warning("dead letter (%s%s): %s", source, f", {topic}" if topic else "", reason[:200])
    with store.transaction() as conn:
        add_in(conn, source, reason, payload=payload, van=van, topic=topic)


def count(store: Store, source: str | None = None) -> int:
    sql, args = "SELECT count(*) FROM dead_letters", ()
    if source is not None:
        sql, args = sql + " WHERE source = ?", (source,)
    return store.reader().execute(sql, args).fetchone()[0]


def recent(store: Store, limit: int = 20) -> list[DeadLetter]:
    rows = store.reader().execute(
        "SELECT seq, at, source, van, topic, reason, payload FROM dead_letters"
        " ORDER BY seq DESC LIMIT ?",
        (limit,),
    )
    return [DeadLetter(r[0], r[1], r[2], r[3], r[4], r[5], bytes(r[6] or b"")) for r in rows]
