"""The box's health: is the record path really working?

Each check returns ``(ok, reason)``. The same checks feed ``/healthz`` (through the
kiosk's health registry, :func:`kiosk.status.register_check`) and the systemd watchdog
(:class:`firmware.sdnotify.Watchdog`), so a box that cannot store is restarted and its
kiosk asks visitors to see the team instead of thanking them for nothing.

=========== =============================================================================
database    the heartbeat (a small real write to ``meta``) succeeded recently and no
            event waits after a hard write error; a full or busy disk is ok (events
            wait in memory), read-only, corrupt or an I/O error is not
retry       the in-memory retry queue is below :data:`RETRY_HEALTH_MAX` events
deadletters at most :data:`DEAD_JUMP` events dead-lettered in :data:`DEAD_WINDOW_S`
gps         the GPS reader's loop went round within :data:`GPS_STALL_S`
=========== =============================================================================
"""

from __future__ import annotations

import time
from collections.abc import Callable

from telemetry.store import Store

from .box_record import HEARTBEAT_S, Recorder

Check = Callable[[], tuple[bool, str]]

RETRY_HEALTH_MAX = 5_000  # half of RETRY_MAX: beyond this the queue is growing unbounded
DEAD_JUMP = 20  # dead letters (record/nmea) in the window that make health fail
DEAD_WINDOW_S = 600.0
GPS_STALL_S = 60.0
HEARTBEAT_STALE_S = 6 * HEARTBEAT_S  # a heartbeat older than this: the record path hangs


def database_check(recorder: Recorder) -> Check:
    def check() -> tuple[bool, str]:
        st = recorder.heartbeat()
        if time.monotonic() - st.at > HEARTBEAT_STALE_S:
            return False, f"no database heartbeat for {time.monotonic() - st.at:.0f} s"
        ws = recorder.write_state
        if st.ok and ws is not None and not ws.ok and recorder.depth:
            return False, ws.reason  # events cannot be written although the heartbeat can
        return st.ok, st.reason

    return check


def retry_check(recorder: Recorder, limit: int = RETRY_HEALTH_MAX) -> Check:
    def check() -> tuple[bool, str]:
        n = recorder.depth
        if n >= limit:
            return False, f"{n} events wait in memory for the disk (limit {limit})"
        return True, f"{n} events wait in memory" if n else ""

    return check


def deadletter_check(store: Store, jump: int = DEAD_JUMP, window_s: float = DEAD_WINDOW_S) -> Check:
    def check() -> tuple[bool, str]:
        n = (
            store.reader()
            .execute(
                "SELECT count(*) FROM dead_letters WHERE at > ? AND source IN ('record', 'nmea')",
                (time.time() - window_s,),
            )
            .fetchone()[0]
        )
        if n > jump:
            return False, f"{n} events dead-lettered in the last {window_s / 60:.0f} min"
        return True, f"{n} dead letters recently" if n else ""

    return check


def gps_check(get_reader: Callable[[], object | None], stall_s: float = GPS_STALL_S) -> Check:
    def check() -> tuple[bool, str]:
        gps = get_reader()
        if gps is None:
            return True, "GPS not started"
        if not gps.is_alive():  # type: ignore[attr-defined]
            return False, "the GPS reader thread has stopped"
        loop = getattr(gps, "loop_monotonic", None)
        if loop is not None and time.monotonic() - loop >= stall_s:
            return False, f"the GPS loop has not gone round for {time.monotonic() - loop:.0f} s"
        return True, ""

    return check
