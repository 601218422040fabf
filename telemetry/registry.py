"""The van registry: which vans exist, what the public calls them, and whether it sees them.

A van appears as ``new`` when the hub first hears from it: staff see it, the public does
not. Staff give it a name and publish it (``public``); they can rename it, set its
OwnTracks tracker id (``tid``, 1-2 letters or digits) and retire it (``retired``: gone
from the public page and API, its data stays in the reports). Table ``vans`` (migration
0009). On a box the registry is just the box's own van, from the config
(:func:`box_van`).

The kiosk (staff pages, public pages) and the hub (registering vans as they publish) both
use this module, so it lives on the ground floor. Every change is checked here, with a
message that names the field; :class:`RegistryError` is a :class:`VanboxError`.
"""

from __future__ import annotations

import re
import sqlite3
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import VanboxError
from .store import Store

STATES = ("new", "public", "retired")
NAME_MAX = 60
VAN_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")  # as telemetry.plan.VAN_RE
TID_RE = re.compile(r"^[A-Za-z0-9]{1,2}$")


class RegistryError(VanboxError):
    """A registry change was refused (unknown van, bad name or tracker id)."""


@dataclass(frozen=True)
class Van:
    id: str
    name: str = ""
    tid: str = ""
    state: str = "new"
    first_seen: float = 0.0
    updated: float = 0.0

    @property
    def public(self) -> bool:
        return self.state == "public"

    @property
    def label(self) -> str:
        """The name staff gave it, else its id (for staff pages only, never public)."""
        return self.name or self.id


# --- validation --------------------------------------------------------------------------


def valid_van_id(van: str) -> bool:
    return bool(VAN_ID_RE.match(van or ""))


def check_name(name: Any) -> str:
    """A display name: trimmed, 1..NAME_MAX characters, no control characters."""
    if not isinstance(name, str):
        raise RegistryError("Name: bitte einen Namen eingeben")
    name = " ".join(name.split())
    if not name:
        raise RegistryError("Name: darf nicht leer sein")
    if len(name) > NAME_MAX:
        raise RegistryError(f"Name: höchstens {NAME_MAX} Zeichen (jetzt {len(name)})")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise RegistryError("Name: enthält Steuerzeichen")
    return name


def check_tid(tid: Any) -> str:
    """An OwnTracks tracker id: 1-2 letters or digits (ASCII); empty clears it."""
    if not isinstance(tid, str):
        raise RegistryError("Tracker-ID: 1–2 Buchstaben oder Ziffern")
    tid = tid.strip()
    if tid and not TID_RE.match(tid):
        raise RegistryError(f"Tracker-ID {tid[:10]!r}: nur 1–2 Buchstaben oder Ziffern (A–Z, 0–9)")
    return tid


# --- reading -----------------------------------------------------------------------------


def _conn(src: Store | sqlite3.Connection) -> sqlite3.Connection:
    return src.reader() if isinstance(src, Store) else src


def _has_table(conn: sqlite3.Connection) -> bool:
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'vans'"
    return conn.execute(sql).fetchone() is not None


def _row(r: Any) -> Van:
    return Van(id=r[0], name=r[1], tid=r[2], state=r[3], first_seen=r[4], updated=r[5])


_COLS = "id, name, tid, state, first_seen, updated"


def all_vans(src: Store | sqlite3.Connection) -> list[Van]:
    """Every van the registry knows (staff view): new ones first, then by name."""
    conn = _conn(src)
    if not _has_table(conn):
        return []
    rows = conn.execute(
        f"SELECT {_COLS} FROM vans ORDER BY CASE state WHEN 'new' THEN 0"
        " WHEN 'public' THEN 1 ELSE 2 END, lower(coalesce(nullif(name, ''), id))"
    )
    return [_row(r) for r in rows]


def public_vans(src: Store | sqlite3.Connection) -> list[Van]:
    """The published vans, by name: the only vans the public ever sees."""
    conn = _conn(src)
    if not _has_table(conn):
        return []
    rows = conn.execute(
        f"SELECT {_COLS} FROM vans WHERE state = 'public' AND name != '' ORDER BY lower(name), id"
    )
    return [_row(r) for r in rows]


def get(src: Store | sqlite3.Connection, van: str) -> Van | None:
    conn = _conn(src)
    if not _has_table(conn):
        return None
    r = conn.execute(f"SELECT {_COLS} FROM vans WHERE id = ?", (van,)).fetchone()
    return _row(r) if r is not None else None


def box_van(cfg: Any) -> Van:
    """On a box the registry is the box's own van, public under its configured name."""
    return Van(id=cfg.van["id"], name=str(cfg.van["name"]), tid=str(cfg.van["tid"]),
               state="public")  # fmt: skip


# --- writing -----------------------------------------------------------------------------


def register(store: Store, vans: Iterable[str], now: float | None = None) -> list[str]:
    """Add the vans not known yet as ``new``; return the ids added. Ids that cannot be a
    van (see :data:`VAN_ID_RE`) are skipped."""
    ids = sorted({v for v in vans if valid_van_id(v)})
    if not ids:
        return []
    t = time.time() if now is None else now
    added = []
    with store.transaction() as conn:
        for v in ids:
            cur = conn.execute(
                "INSERT OR IGNORE INTO vans (id, first_seen, updated) VALUES (?, ?, ?)", (v, t, t)
            )
            if cur.rowcount:
                added.append(v)
    return added


def _change(store: Store, van: str, sets: dict[str, Any], now: float | None) -> Van:
    t = time.time() if now is None else now
    with store.transaction() as conn:
        r = conn.execute(f"SELECT {_COLS} FROM vans WHERE id = ?", (van,)).fetchone()
        if r is None:
            raise RegistryError(f"Unbekannter Bus: {van[:64]!r}")
        old = _row(r)
        if callable(sets):
            sets = sets(old)
        cols = ", ".join(f"{k} = ?" for k in sets)
        conn.execute(f"UPDATE vans SET {cols}, updated = ? WHERE id = ?", (*sets.values(), t, van))
        r = conn.execute(f"SELECT {_COLS} FROM vans WHERE id = ?", (van,)).fetchone()
    return _row(r)


def rename(store: Store, van: str, name: str, now: float | None = None) -> Van:
    return _change(store, van, {"name": check_name(name)}, now)


def set_tid(store: Store, van: str, tid: str, now: float | None = None) -> Van:
    return _change(store, van, {"tid": check_tid(tid)}, now)


def publish(store: Store, van: str, now: float | None = None) -> Van:
    """Make the van public (from ``new`` or ``retired``); it must have a name."""

    def sets(old: Van) -> dict[str, Any]:
        if not old.name:
            raise RegistryError("Name: bitte zuerst einen Namen geben, dann veröffentlichen")
        return {"state": "public"}

    return _change(store, van, sets, now)  # type: ignore[arg-type]


def retire(store: Store, van: str, now: float | None = None) -> Van:
    return _change(store, van, {"state": "retired"}, now)


def update(
    store: Store, van: str, *, name: str, tid: str, state: str, now: float | None = None
) -> Van:
    """One form's worth of changes, all checked before anything is written."""
    name, tid = check_name(name), check_tid(tid)
    if state not in STATES:
        raise RegistryError(f"Status {state[:20]!r}: erlaubt sind {', '.join(STATES)}")
    return _change(store, van, {"name": name, "tid": tid, "state": state}, now)
