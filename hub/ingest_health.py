"""The hub ingest's health: :meth:`IngestHealth.health` says whether the ingest really
works (``/healthz`` of the hub's web app asks it).

It fails when the worker thread is not running or has died, when one batch has been
retrying a transient write error for longer than ``retry_unhealthy_s`` (a minute), when
messages could be neither stored nor kept as dead letters, or when dead letters pile up
(more than ``dead_max`` in ``dead_window_s``). :class:`hub.ingest.Hub` mixes it in; the
worker notes the dead letters it keeps with :meth:`IngestHealth._note_dead`.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from .ingest_batch import DEAD_MAX, DEAD_WINDOW_S, RETRY_UNHEALTHY_S, HubStats


class IngestHealth:
    """The health half of :class:`hub.ingest.Hub` (call :meth:`_init_health` in
    ``__init__``). Reads the hub's ``_worker`` and ``stats``."""

    _worker: threading.Thread | None
    stats: HubStats

    def _init_health(self) -> None:
        self._retry_since: float | None = None  # monotonic start of a retrying batch
        self._last_error = ""
        self._unkept = 0  # messages neither stored nor kept as dead letters
        self._dead_times: deque[tuple[float, int]] = deque()
        self._health_lock = threading.Lock()
        self.retry_unhealthy_s = RETRY_UNHEALTHY_S
        self.dead_window_s = DEAD_WINDOW_S
        self.dead_max = DEAD_MAX

    def health(self, now: float | None = None) -> tuple[bool, str]:
        """``(True, "...")`` while the ingest really works; ``(False, reason)`` when its
        thread is dead, a batch has been retrying for longer than a minute, messages
        could be neither stored nor kept, or dead letters pile up (more than
        ``dead_max`` in ``dead_window_s``). ``now`` is ``time.monotonic()`` by default."""
        now = time.monotonic() if now is None else now
        worker = self._worker
        if worker is None:
            return False, "hub ingest is not running"
        if not worker.is_alive():
            return False, "hub ingest thread has died"
        since = self._retry_since
        if since is not None and now - since > self.retry_unhealthy_s:
            return False, (
                f"hub cannot store a batch for {now - since:.0f} s ({self._last_error[:200]})"
            )
        if self._unkept:
            return False, f"{self._unkept} messages could be neither stored nor kept aside"
        recent = self.dead_letters_since(now - self.dead_window_s)
        if recent > self.dead_max:
            return False, (
                f"{recent} dead letters in the last {self.dead_window_s / 60:.0f} minutes"
                f" (last: {self.stats.last_dead[-1][:200] if self.stats.last_dead else '?'})"
            )
        return True, f"hub ingest ok ({self.stats.events} events, {recent} recent dead letters)"

    def dead_letters_since(self, t: float) -> int:
        """How many dead letters this hub kept since monotonic time ``t``."""
        with self._health_lock:
            return sum(n for at, n in self._dead_times if at >= t)

    def _note_dead(self, n: int, reasons: list[str]) -> None:
        now = time.monotonic()
        with self._health_lock:
            self._dead_times.append((now, n))
            while self._dead_times and self._dead_times[0][0] < now - 2 * DEAD_WINDOW_S:
                self._dead_times.popleft()
        self.stats.last_dead.extend(r[:300] for r in reasons)
        self.stats.dead_letters += n  # last: a reader that sees the count sees the rest
