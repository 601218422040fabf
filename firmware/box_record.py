"""The box's record path: every event into the store, or kept aside, never stuck.

:class:`Recorder` is what :meth:`firmware.box.Box.record` calls for every event (GPS
positions, stop visits, door counts, check-ins). It tells two kinds of failure apart:

- **the disk** (full, locked, read-only, I/O error, corrupt file: ``sqlite3.Operational
  Error`` and the store's other non-data errors): the event waits in an in-memory retry
  queue, in order, and is written when the disk takes it again;
- **the event** (a value no column takes: ``OverflowError``, ``ValueError``,
  ``TypeError``, ``sqlite3.IntegrityError``/``DataError``/``InterfaceError``...): it can
  never be stored, so it goes to the dead-letter table (source ``record``) with its
  reason and never blocks the events behind it. If even that write fails it is logged
  and dropped, never retried forever.

It also keeps the heartbeat (:meth:`heartbeat`, at most every :data:`HEARTBEAT_S`
seconds): a small real write to ``meta`` when no event was written for
:data:`HEARTBEAT_WRITE_S`, so a read-only remount or a corrupt file is seen even when no
event is waiting; in between it only takes the store's write lock, which shows the
record path does not hang (each write is one more WAL frame and fsync on the SD card).
``db_state`` holds the last result for the health checks.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from enum import StrEnum

from telemetry import deadletter
from telemetry.events import Event
from telemetry.store import Store

log = logging.getLogger("vanbox.box")

# Events that could not be written (disk full, database locked for too long) wait here
# and are retried; the oldest track points go first if it fills up.
RETRY_MAX = 10_000
RETRY_EVERY_S = 2.0
HEARTBEAT_S = 5.0  # the heartbeat looks at the record path this often
# ... but writes (a WAL frame and an fsync on the SD card) only when no event was written
# for this long: an event written proves the disk as well (benchmarks/bench_sd_writes.py).
HEARTBEAT_WRITE_S = 60.0
HEARTBEAT_KEY = "box_heartbeat"

# sqlite's primary result codes for a disk that will take writes again by itself
_FULL_OR_BUSY = {"SQLITE_FULL", "SQLITE_BUSY", "SQLITE_LOCKED"}
# ... and for a value no column takes: retrying never helps
_DATA_ERRORS = (
    OverflowError,
    ArithmeticError,
    ValueError,
    TypeError,
    KeyError,
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
)


class Outcome(StrEnum):
    STORED = "stored"  # committed with its outbox row
    QUEUED = "queued"  # the disk cannot take it now; waits in memory, in order
    DEAD = "dead"  # can never be stored; kept in dead_letters with its reason
    DROPPED = "dropped"  # could not even be dead-lettered; logged and gone


def is_disk_error(e: BaseException) -> bool:
    """True for a failure of the storage (retry later), False for a failure of the event
    (never retry). A ``StoreError`` counts as what caused it."""
    seen = 0
    while e is not None and seen < 5:
        if isinstance(e, _DATA_ERRORS):
            return False
        if isinstance(e, sqlite3.DatabaseError | OSError | MemoryError):
            return True
        e = e.__cause__ or e.__context__  # type: ignore[assignment]
        seen += 1
    return False


def sqlite_code(e: BaseException) -> str:
    """The sqlite result name of ``e`` (``SQLITE_FULL``...), or ``""``."""
    name = getattr(e, "sqlite_errorname", "") or ""
    return name.split("_")[0] + "_" + name.split("_")[1] if name.count("_") >= 2 else name


@dataclass(frozen=True)
class DbState:
    """The last heartbeat: ``ok`` False means the database cannot take writes and will
    not heal by itself (read-only, corrupt, I/O error); a full or locked disk is ``ok``
    with a ``reason`` (events wait in memory)."""

    ok: bool
    reason: str
    at: float  # time.monotonic() of the attempt
    degraded: bool = False


class Recorder:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._retry: deque[Event] = deque()
        self._lock = threading.Lock()
        self.errors = 0  # failed write attempts (either kind)
        self.dead = 0  # events dead-lettered by this process
        self.dropped = 0  # events neither stored nor dead-lettered
        self.db_state: DbState | None = None  # the last heartbeat
        self.write_state: DbState | None = None  # the last failed event write, until one works
        self._hb_lock = threading.Lock()
        self.queued_since: float | None = None  # monotonic time the queue became non-empty
        self.written_at: float | None = None  # monotonic time of the last event written

    # --- recording ----------------------------------------------------------------

    def record(self, ev: Event) -> Outcome:
        """Store ``ev``; keep it for a retry if the disk cannot take it now; dead-letter
        it if it can never be stored. Never raises."""
        with self._lock:
            if self._retry:  # keep the order: older waiting events first
                self._enqueue(ev)
                return Outcome.QUEUED
        try:
            self.store.record(ev)
            self.write_state = None
            self.written_at = time.monotonic()
            return Outcome.STORED
        except Exception as e:  # noqa: BLE001 - sorted below; nothing may escape
            self.errors += 1
            if not is_disk_error(e):
                return self._dead_letter(ev, e)
            log.error("could not store %s %s (%s); keeping it for a retry", type(ev).__name__,
                      ev.id, e)  # fmt: skip
            self._note_disk(e)
            with self._lock:
                self._enqueue(ev)
            return Outcome.QUEUED

    def record_many(self, evs: list[Event]) -> list[Outcome]:
        """:meth:`record` for events that arrive together: one transaction (one WAL
        write and fsync) for all of them; if that fails for an event, one by one."""
        if len(evs) == 1:
            return [self.record(evs[0])]
        with self._lock:
            if self._retry:
                for ev in evs:
                    self._enqueue(ev)
                return [Outcome.QUEUED] * len(evs)
        try:
            self.store.record_many(evs)
        except Exception as e:  # noqa: BLE001 - sorted below; nothing may escape
            if is_disk_error(e):
                self.errors += 1
                log.error("could not store %d events (%s); keeping them for a retry",
                          len(evs), e)  # fmt: skip
                self._note_disk(e)
                with self._lock:
                    for ev in evs:
                        self._enqueue(ev)
                return [Outcome.QUEUED] * len(evs)
            return [self.record(ev) for ev in evs]  # find the bad one; the rest go in
        self.write_state = None
        self.written_at = time.monotonic()
        return [Outcome.STORED] * len(evs)

    def _enqueue(self, ev: Event) -> None:
        if not self._retry:
            self.queued_since = time.monotonic()
        self._retry.append(ev)
        while len(self._retry) > RETRY_MAX:
            self._drop_one()

    def _drop_one(self) -> None:
        for i, old in enumerate(self._retry):
            if type(old).__name__ == "Position":
                del self._retry[i]
                return
        log.critical("retry queue full of counts and check-ins; the disk needs attention")
        self._retry.popleft()
        self.dropped += 1

    def _dead_letter(self, ev: Event, e: BaseException) -> Outcome:
        reason = f"{type(e).__name__}: {e}"
        try:
            payload = repr(asdict(ev))  # type: ignore[call-overload]
        except Exception:  # noqa: BLE001 - the event itself may be what is broken
            payload = repr(ev)
        try:
            deadletter.add(
                self.store, "record", f"{type(ev).__name__} {ev.id}: {reason}", payload=payload,
                van=self.store.van, topic=type(ev).__name__.lower(),
            )  # fmt: skip
        except Exception as e2:  # noqa: BLE001 - even the dead-letter write failed
            self.dropped += 1
            log.error("dropped %s %s: it cannot be stored (%s) and not even kept aside (%s)",
                      type(ev).__name__, ev.id, reason, e2)  # fmt: skip
            return Outcome.DROPPED
        self.dead += 1
        return Outcome.DEAD

    def retry_once(self) -> int:
        """Write what waits, in order; returns how many left the queue. A batch that
        fails for the disk stays; one that fails for an event is written one by one,
        the bad events dead-lettered."""
        with self._lock:
            batch = list(self._retry)
        if not batch:
            return 0
        try:
            self.store.record_many(batch)
            done = len(batch)
            self.written_at = time.monotonic()
        except Exception as e:  # noqa: BLE001
            if is_disk_error(e):
                self._note_disk(e)
                log.warning("retry of %d events failed: %s", len(batch), e)
                return 0
            done = self._one_by_one(batch)
        with self._lock:
            # Remove exactly the events written, by identity: while the batch was being
            # written, other threads may have queued more and a full queue may have
            # dropped old track points, so "the first `done`" is not the same events.
            written = {id(ev) for ev in batch[:done]}
            self._retry = deque(ev for ev in self._retry if id(ev) not in written)
            if not self._retry:
                self.queued_since = None
                self.write_state = None
        if done:
            log.info("stored %d events that had waited for the disk", done)
        return done

    def _one_by_one(self, batch: list[Event]) -> int:
        done = 0
        for ev in batch:
            try:
                self.store.record(ev)
            except Exception as e:  # noqa: BLE001
                if is_disk_error(e):
                    self._note_disk(e)
                    break
                self._dead_letter(ev, e)
            done += 1
        return done

    def flush(self) -> None:
        """At shutdown: one last try for what waits (the bad ones dead-lettered)."""
        self.retry_once()
        if self._retry:
            log.error("%d events could not be stored at shutdown", len(self._retry))

    @property
    def depth(self) -> int:
        return len(self._retry)

    @property
    def queue(self) -> deque[Event]:
        return self._retry

    # --- heartbeat ------------------------------------------------------------------

    def heartbeat(self, *, force: bool = False) -> DbState:
        """At most every HEARTBEAT_S: a small real write (``meta.box_heartbeat``) if no
        event was written for HEARTBEAT_WRITE_S (or ``force``), else only the store's
        write lock taken and given back (a hung writer holds it: the heartbeat goes
        stale)."""
        st = self.db_state
        now = time.monotonic()
        if st is not None and not force and now - st.at < HEARTBEAT_S:
            return st
        if not self._hb_lock.acquire(blocking=False):
            return st or DbState(True, "", now)  # another thread is writing it right now
        try:
            wrote = self.written_at
            if (
                not force
                and st is not None
                and st.ok
                and not st.degraded
                and wrote is not None
                and now - wrote < HEARTBEAT_WRITE_S
            ):
                with self.store._lock:  # an event was written lately: the disk takes writes
                    pass
                st = DbState(True, "", now)
                self.db_state = st
                return st
            try:
                with self.store.transaction() as conn:
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES (?, ?)"
                        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        (HEARTBEAT_KEY, time.time()),
                    )
                st = DbState(True, "", now)
                self.written_at = now
            except Exception as e:  # noqa: BLE001
                st = self._state_for(e, now)
            self.db_state = st
            return st
        finally:
            self._hb_lock.release()

    def _note_disk(self, e: BaseException) -> None:
        """An event write failed for the disk: the health checks see it at once (a
        corrupt table can fail event writes while the heartbeat row still works)."""
        self.write_state = self._state_for(e, time.monotonic())

    def _state_for(self, e: BaseException, now: float) -> DbState:
        from .doctor_db import explain_error

        code = sqlite_code(e)
        if code in _FULL_OR_BUSY:
            what = "the disk is full" if code == "SQLITE_FULL" else "the database is busy"
            return DbState(True, f"{what}: events wait in memory ({e})", now, degraded=True)
        return DbState(False, explain_error(e, self.store.path), now)
