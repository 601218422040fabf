"""Recording a finished check-in: once per flow (:class:`RepeatGuard`), and whether it
was kept (stored, or safely waiting in the box's retry queue)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from flask import current_app

from telemetry.events import CheckIn

from . import appctx

STATE_KEY = "vanbox_checkin"


class RepeatGuard:
    """Each flow (one visitor's pass through the screens) records at most once.

    Twenty fast taps on "done" (or a replayed post) carry the same flow id and make one
    check-in; two visitors carry two flow ids and make two, however close together. A
    flow id is remembered for at least ``min_interval`` seconds (and while it is among the
    last ``remember`` flows), so repeats are refused. ``clock`` is injectable so tests
    need not sleep.
    """

    def __init__(
        self, min_interval: float, clock: Callable[[], float] = time.monotonic, remember: int = 512
    ) -> None:
        self.min_interval = float(min_interval)
        self.clock = clock
        self.remember = remember
        self.lock = threading.Lock()
        self._flows: OrderedDict[str, float] = OrderedDict()

    def admit(self, flow: str, record: Callable[[], object]) -> bool:
        """Run ``record()`` unless this flow has recorded already; returns whether it ran."""
        with self.lock:
            now = self.clock()
            if flow in self._flows:
                return False
            record()
            self._flows[flow] = now
            while len(self._flows) > self.remember:
                oldest = next(iter(self._flows.values()))
                if now - oldest < self.min_interval:
                    break  # a burst: keep every flow of the last min_interval seconds
                self._flows.popitem(last=False)
            return True


def guard() -> RepeatGuard:
    return current_app.extensions[STATE_KEY]


def _record_kept(event: CheckIn) -> bool:
    """Record the check-in; True when it is stored, or waits in the box's retry queue
    while the box is healthy (a full disk); False when the box cannot store."""
    from .status import healthy

    recorder = current_app.extensions.get("vanbox_record")
    try:
        outcome = str(recorder(event)) if recorder is not None else str(appctx.record(event))
    except Exception:  # noqa: BLE001 - the visitor gets the staff screen, not a 500
        current_app.logger.exception("check-in could not be recorded")
        return False
    if outcome == "queued":
        return healthy()[0]
    return outcome not in ("dead", "dropped")
