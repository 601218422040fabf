"""Publishing each van's tour plan from the hub: retained, QoS 1, on ``<prefix>/<van>/plan``.

The hub is the system of record for the plans (telemetry/plan.py, table ``plans``).
:class:`PlanPublisher` sends a van's newest stored plan

- after every staff change (the staff pages call it through
  ``app.extensions["vanbox_plan_published"]``, see :func:`install`), and
- for every van on each (re)connection of the hub to the broker (a broker that lost its
  retained messages gets them back), and
- again for any van whose publish failed (hub not connected), once it is connected.

The box takes a plan only if its version is newer than the one it has, so sending a
plan twice is harmless.

    plans = PlanPublisher(store, hub.publish, prefix="vanbox")
    plans.watch(hub)                       # republish on (re)connect, retry failures
    install(app, plans)                    # staff changes are published at once
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from telemetry import topics
from telemetry.plan import Plan, plan_vans, stored_plan
from telemetry.store import Store

log = logging.getLogger("vanbox.hub.plans")

EXTENSION = "vanbox_plan_published"  # app.extensions key: a callable(plan)
WATCH_S = 0.5  # how often the watcher looks at the hub's connection

Publish = Callable[..., bool]  # publish(topic, payload, retain=True) -> sent?


class PlanPublisher:
    """Send plans retained to the vans (see the module docstring)."""

    def __init__(self, store: Store, publish: Publish, *, prefix: str = "vanbox") -> None:
        self.store = store
        self._publish = publish
        self.prefix = prefix
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0  # plans handed to the broker (for tests and the status page)

    def topic(self, van: str) -> str:
        return topics.topic(self.prefix, van, "plan")

    def __call__(self, plan: Plan) -> bool:
        """A plan was just saved: publish its van's newest plan; if the hub is offline,
        retry when it connects."""
        return self.publish_van(plan.van)

    def publish_van(self, van: str) -> bool:
        """Publish the newest stored plan of ``van`` (nothing stored: nothing to send).
        Reading and sending happen under one lock, so a republish racing a staff change
        can never leave an older plan retained after a newer one."""
        with self._send_lock:
            plan = stored_plan(self.store.reader(), van)
            if plan is None:
                return True
            return self._send(van, plan)

    def publish_all(self) -> int:
        """Publish every van's newest plan; returns how many were handed to the broker."""
        return sum(1 for van in plan_vans(self.store.reader()) if self.publish_van(van))

    def _send(self, van: str, plan: Plan) -> bool:
        try:
            ok = bool(self._publish(self.topic(van), plan.to_json(), retain=True))
        except Exception:  # noqa: BLE001 - a failed publish is retried, never raised to staff
            log.exception("publishing the plan of %s failed", van)
            ok = False
        with self._lock:
            if ok:
                self._pending.discard(van)
                self.sent += 1
            else:
                self._pending.add(van)
        if ok:
            log.info("plan of %s, version %d, published", van, plan.version)
        else:
            log.warning("plan of %s not published (broker not connected); will retry", van)
        return ok

    @property
    def pending(self) -> set[str]:
        with self._lock:
            return set(self._pending)

    # --- following the hub's connection ----------------------------------------------

    def watch(self, hub: Any) -> PlanPublisher:
        """Republish all plans after each (re)connection of ``hub`` (its
        ``stats.connects`` goes up) and retry failed ones while it is connected."""
        if self._thread is not None:
            return self
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._watch, args=(hub,), name="hub-plans", daemon=True
        )
        self._thread.start()
        return self

    def _watch(self, hub: Any) -> None:
        seen = 0
        while not self._stop.wait(WATCH_S):
            try:
                if not hub.connected:
                    continue
                connects = hub.stats.connects
                if connects != seen:
                    seen = connects
                    n = self.publish_all()
                    log.info("hub (re)connected: %d plan(s) published", n)
                else:
                    for van in self.pending:
                        self.publish_van(van)
            except Exception:  # noqa: BLE001 - keep watching
                log.exception("plan watcher")

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def install(app: Any, published: Callable[[Plan], Any]) -> None:
    """Let the staff pages announce each saved plan (``published(plan)``)."""
    app.extensions[EXTENSION] = published
