"""Failed staff logins and the lockout they lead to, counted in the database (table
``staff_failures``, migration 0007): see :class:`Lockout` for the whole rule."""

from __future__ import annotations

import logging

from telemetry.stores import DB_ERRORS

log = logging.getLogger("kiosk.auth")  # the staff login's log, whichever module writes

LOCK_BACKOFF_MAX = 8  # a lockout lasts lockout_minutes x 1, 2, 4, 8 for lockouts in a row
STRIKES_FORGOTTEN_S = 24 * 3600  # a day without failures and the backoff starts again
ALL_NAMES = "*"  # the row counting one client's failures over every name


class Lockout:
    """Failed logins, kept in the database (table ``staff_failures``) per login name
    *and* client address, so a restart keeps them and every web process shares them.

    The rule:

    - ``max_failures`` failures for one name from one client within ``window_s`` lock
      that name for that client for ``window_s``; each further lockout in a row doubles
      it, up to 8x. A success or a day without failures resets it.
    - One client failing ``names_factor x max_failures`` times over *any* names within
      ``window_s`` is locked for every name (no password spraying, no name flooding).
    - Somebody else's failures never lock a person out from their own address, and every
      lockout ends (at the latest ``8 x window_s`` after the last failure); so nobody
      can keep a name locked out for good.
    - Storage is bounded: at more than ``max_rows`` rows the oldest rows that are *not*
      locked are deleted; a live lockout is never deleted to make room, so flooding other
      names never lifts one.
    """

    MAX_ROWS = 20_000
    NAMES_FACTOR = 4

    def __init__(self, store, max_failures: int, window_s: float) -> None:
        self.store = store
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_rows = self.MAX_ROWS

    @staticmethod
    def key(name: str) -> str:
        return name.strip().lower()[:64]

    @staticmethod
    def client_key(client: str | None) -> str:
        return (client or "-")[:64]

    def locked_until(self, name: str, client: str | None, now: float) -> float | None:
        rows = (
            self.store.reader()
            .execute(
                "SELECT max(locked_until) FROM staff_failures"
                " WHERE client = ? AND name IN (?, ?) AND locked_until > ?",
                (self.client_key(client), self.key(name), ALL_NAMES, now),
            )
            .fetchone()
        )
        return rows[0] if rows and rows[0] is not None else None

    def _bump(self, conn, name: str, client: str, now: float, limit: int) -> None:
        row = conn.execute(
            "SELECT failures, first, last, locked_until, strikes FROM staff_failures"
            " WHERE name = ? AND client = ?",
            (name, client),
        ).fetchone()
        if row is None:
            failures, first, strikes, until = 0, now, 0, 0.0
        else:
            failures, first, last, until, strikes = row
            if now - first >= self.window_s:  # a new window
                failures, first = 0, now
            if now - last >= STRIKES_FORGOTTEN_S:
                strikes = 0
        failures += 1
        if failures >= limit and until <= now:
            until = now + self.window_s * min(LOCK_BACKOFF_MAX, 2**strikes)
            strikes, failures, first = strikes + 1, 0, now
        conn.execute(
            "INSERT INTO staff_failures"
            " (name, client, failures, first, last, locked_until, strikes)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name, client) DO UPDATE SET"
            " failures = excluded.failures, first = excluded.first, last = excluded.last,"
            " locked_until = excluded.locked_until, strikes = excluded.strikes",
            (name, client, failures, first, now, until, strikes),
        )

    def failure(self, name: str, client: str | None, now: float) -> None:
        client = self.client_key(client)
        try:
            with self.store.transaction() as conn:
                self._bump(conn, self.key(name), client, now, self.max_failures)
                self._bump(conn, ALL_NAMES, client, now, self.max_failures * self.NAMES_FACTOR)
                self._trim(conn, now)
        except DB_ERRORS as e:  # the database's health check reports it; log it here
            log.error("staff login: cannot count a failed login (%s)", e)

    def _trim(self, conn, now: float) -> None:
        # Forgotten after a day without failures (the backoff is reset by then anyway).
        conn.execute(
            "DELETE FROM staff_failures WHERE last < ? AND locked_until <= ?",
            (now - STRIKES_FORGOTTEN_S, now),
        )
        (n,) = conn.execute("SELECT count(*) FROM staff_failures").fetchone()
        if n <= self.max_rows:
            return
        # Old rows first: those whose window and backoff memory are over, then the
        # oldest unlocked ones. Never a row that is locked now.
        conn.execute(
            "DELETE FROM staff_failures WHERE rowid IN (SELECT rowid FROM staff_failures"
            " WHERE locked_until <= ? ORDER BY last LIMIT ?)",
            (now, n - self.max_rows),
        )

    def success(self, name: str, client: str | None) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "DELETE FROM staff_failures WHERE name = ? AND client = ?",
                (self.key(name), self.client_key(client)),
            )

    def __len__(self) -> int:
        return self.store.reader().execute("SELECT count(*) FROM staff_failures").fetchone()[0]
