"""Worker 0 hears of the batches it stores itself; those of workers 1..N-1 (child
processes, hub/workers.py) it finds in the store.

:class:`OtherBatches` looks every ``poll_s`` for positions stored after the newest it
has seen, by rowid as the feeds read them (hub/owntracks.py: rowids commit in order),
and hands their vans to the
same ``on_batch`` as worker 0's own batches: the OwnTracks view, the forwarder's wake-up
and the registrar then see every worker's positions live, not only worker 0's::

    worker 1 stores van-7's fix ──> positions (rowid 812)
                                     │  within poll_s
    OtherBatches.poll_once() ────────┘──> on_batch({"van-7"})

The listeners read from their own watermarks, so a van handed on twice (worker 0's
batch and this poll) costs a query, never a second message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from telemetry.store import Store

log = logging.getLogger("vanbox.hub.workers")

POLL_S = 1.0


class OtherBatches:
    """Polls the store for positions stored by other processes (see the module)."""

    def __init__(
        self, store: Store, on_batch: Callable[[set[str]], object], *, poll_s: float = POLL_S
    ) -> None:
        self.store = store
        self.on_batch = on_batch
        self.poll_s = float(poll_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.mark = self._top()  # what is stored already was handed on (or is history)

    def _top(self) -> int:
        sql = "SELECT coalesce(max(rowid), 0) FROM positions"
        return int(self.store.reader().execute(sql).fetchone()[0])

    def poll_once(self) -> set[str]:
        """Hand on the vans with positions after the mark; returns them."""
        rows = (
            self.store.reader()
            .execute(
                "SELECT van, max(rowid) FROM positions WHERE rowid > ? GROUP BY van", (self.mark,)
            )  # fmt: skip
            .fetchall()
        )
        if not rows:
            if 0 < self.mark and self._top() < self.mark:
                self.mark = 0  # retention emptied the table: rowids start again
                return self.poll_once()
            return set()
        vans = {r[0] for r in rows}
        self.on_batch(vans)
        self.mark = max(self.mark, *(int(r[1]) for r in rows))
        return vans

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - a feed must not stop; next poll tries again
                log.exception("looking for other workers' batches failed")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="hub-other-batches", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
