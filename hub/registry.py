"""The hub's side of the van registry: a van is registered (state ``new``) the first time
it publishes. The registry itself (table ``vans``, validation, staff changes) is
:mod:`telemetry.registry`, which the kiosk's pages share.

:class:`Registrar` is a listener for :class:`hub.ingest.Hub`'s ``on_batch`` hook (the set
of vans each committed batch touched). It remembers the vans it has seen, so a batch of
known vans costs no database write.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from telemetry import registry
from telemetry.store import Store

log = logging.getLogger("vanbox.hub.registry")


class Registrar:
    """Register every van that publishes; ``on_new`` (optional) hears about new ones."""

    def __init__(self, store: Store, on_new: Callable[[list[str]], None] | None = None) -> None:
        self.store = store
        self.on_new = on_new
        self._lock = threading.Lock()
        self._known: set[str] = {v.id for v in registry.all_vans(store)}

    def __call__(self, vans: Iterable[str]) -> list[str]:
        fresh = {v for v in vans if v and v not in self._known}
        if not fresh:
            return []
        with self._lock:
            added = registry.register(self.store, fresh)
            self._known.update(fresh)
        for v in added:
            log.info("new van %r: shown to staff under /staff/fleet, not public yet", v)
        for v in sorted(fresh - set(added)):
            if not registry.valid_van_id(v):
                log.warning(
                    "van id %r is not a valid van id (a-z, 0-9, _ and -): not registered", v
                )
        if added and self.on_new is not None:
            self.on_new(added)
        return added


def chain(*listeners: Callable[[set[str]], object] | None) -> Callable[[set[str]], None]:
    """One ``on_batch`` hook that calls each listener in turn (a failing one is logged and
    does not stop the others)."""
    todo = [f for f in listeners if f is not None]

    def on_batch(vans: set[str]) -> None:
        for f in todo:
            try:
                f(vans)
            except Exception:  # noqa: BLE001 - one listener must not stop the others
                log.exception("on_batch listener %r failed", f)

    return on_batch
