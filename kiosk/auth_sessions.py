"""Open staff sessions, kept in the database (table ``staff_sessions``, migration 0007):
see :class:`Sessions`."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass

from telemetry.stores import DB_ERRORS

log = logging.getLogger("kiosk.auth")  # the staff login's log, whichever module writes


@dataclass(frozen=True)
class _Session:
    user: str
    pwid: str
    seen: float


def _sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8", "surrogatepass")).hexdigest()


class Sessions:
    """Open staff sessions, kept in the database (table ``staff_sessions``): a restart
    keeps them and every web process on the database shares them. The browser's
    (signed) cookie carries only a random session id; the table holds its SHA-256, so
    a copy of the database logs nobody in. A logout or a timeout deletes the row, so an
    old copy of the cookie is worth nothing."""

    MAX_SESSIONS = 1000
    SEEN_EVERY_S = 10.0  # write "seen" at most this often per session (fewer writes)

    def __init__(self, store, timeout_s: float) -> None:
        self.store = store
        self.timeout_s = timeout_s

    def create(self, user: str, pwid: str, now: float) -> str:
        sid = secrets.token_urlsafe(32)
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM staff_sessions WHERE seen < ?", (now - self.timeout_s,))
            (n,) = conn.execute("SELECT count(*) FROM staff_sessions").fetchone()
            if n >= self.MAX_SESSIONS:  # the least recently used go
                conn.execute(
                    "DELETE FROM staff_sessions WHERE id_hash IN (SELECT id_hash FROM"
                    " staff_sessions ORDER BY seen LIMIT ?)",
                    (n - self.MAX_SESSIONS + 1,),
                )
            conn.execute(
                "INSERT INTO staff_sessions (id_hash, user, pwid, created, seen)"
                " VALUES (?, ?, ?, ?, ?)",
                (_sid_hash(sid), user, pwid, now, now),
            )
        return sid

    def touch(self, sid: str, now: float, *, active: bool = True) -> tuple[_Session | None, str]:
        """The session and "" if it is valid (with ``active``, its idle time starts
        again); else (None, "expired") or (None, "") for an unknown id."""
        h = _sid_hash(sid)
        row = (
            self.store.reader()
            .execute("SELECT user, pwid, seen FROM staff_sessions WHERE id_hash = ?", (h,))
            .fetchone()
        )
        if row is None:
            return None, ""
        s = _Session(row[0], row[1], row[2])
        if now - s.seen > self.timeout_s or now < s.seen - 60:
            self.drop(sid)
            return None, "expired"
        if active and now - s.seen >= self.SEEN_EVERY_S:
            try:
                with self.store.transaction() as conn:
                    conn.execute(
                        "UPDATE staff_sessions SET seen = max(seen, ?) WHERE id_hash = ?",
                        (now, h),
                    )
            except DB_ERRORS as e:  # a full or read-only disk: reading goes on
                log.warning("staff session: cannot note the last request (%s)", e)
        return s, ""

    def drop(self, sid: str) -> None:
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM staff_sessions WHERE id_hash = ?", (_sid_hash(sid),))

    def __len__(self) -> int:
        return self.store.reader().execute("SELECT count(*) FROM staff_sessions").fetchone()[0]
