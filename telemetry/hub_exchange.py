"""The publisher's exchange with the hub (telemetry/tally.py, telemetry/delivery.py): the
tally it publishes, and the acks and plans it receives.

On every connect the publisher subscribes (QoS 1) to ``<prefix>/<van>/ack`` and
``<prefix>/<van>/plan`` (:meth:`HubExchange.subscriptions`). It publishes the box's full
per-day tally (QoS 1, retained) on connect, after a resend has drained, at least every
``tally_max_s`` (a day), and when counts changed since the last full one at most every
``tally_full_s`` (30 min); in between, when the counts changed (at most every
``tally_min_s``, default 300 s), a tally of today only (not retained: the retained one
stays a full tally for a hub that subscribes), or the full one if an older day changed
(:meth:`HubExchange.tally_wanted` decides, the publisher sends).
An ack goes to :meth:`telemetry.delivery.BoxDelivery.on_ack`, which re-enqueues what the
hub misses; a malformed ack is logged and ignored. A plan goes to the optional
``on_plan(payload: bytes)`` callback; its exceptions are logged, never raised.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from .delivery import BoxDelivery
from .errors import VanboxError
from .store import Store
from .tally import DEFAULT_WINDOW_DAYS

log = logging.getLogger("vanbox.publisher")


class HubExchange:
    """The hub's side of one publisher: ``delivery`` (None: no tallies, no acks) and
    ``on_plan`` for the messages on ``plan_topic`` and ``ack_topic``, and when to publish
    the tally (every ``min_s`` at most, a full one every ``full_s`` at most when counts
    changed and at least every ``max_s``). The counters feed ``Publisher.stats()``."""

    def __init__(
        self,
        delivery: BoxDelivery | None,
        on_plan: Callable[[bytes], None] | None,
        *,
        plan_topic: str,
        ack_topic: str,
        min_s: float,
        max_s: float,
        full_s: float,
    ) -> None:
        self.delivery = delivery
        self.on_plan = on_plan
        self.plan_topic = plan_topic
        self.ack_topic = ack_topic
        self.min_s = float(min_s)
        self.max_s = float(max_s)
        self.full_s = float(full_s)
        self.due = False  # publish the full tally at the next chance
        self.at = -math.inf  # when a tally was last asked for
        self.full_at = -math.inf  # when the last full one went out
        self.full_mark = -1  # the publisher's mark at the last full one
        self.mark = -1  # the publisher's mark at the last tally
        self.resend_waiting = False  # the hub asked for rows: a full tally once they are out
        self.tallies = 0
        self.acks_in = 0
        self.bad_acks = 0
        self.plans_in = 0

    @classmethod
    def for_box(
        cls,
        store: Store,
        cfg: dict[str, Any],
        topic: dict[str, str],
        on_plan: Callable[[bytes], None] | None,
        *,
        reconcile: bool,
        resend_backoff_s: float,
        tally_min_s: float | None,
        tally_max_s: float,
        tally_full_s: float,
    ) -> HubExchange:
        """The exchange of a box's publisher on ``store`` with the ``[mqtt]`` section
        ``cfg`` and the van's topics: with a :class:`BoxDelivery` if ``reconcile``
        (``mqtt.reconcile_days``), the tally at most every ``tally_min_s`` (default
        ``mqtt.tally_interval_s``). Both are validated in telemetry/config.py; the
        defaults here serve callers that pass a partial mqtt section."""
        delivery = (
            BoxDelivery(
                store,
                window_days=int(cfg.get("reconcile_days", DEFAULT_WINDOW_DAYS)),
                backoff_s=resend_backoff_s,
            )
            if reconcile
            else None
        )
        return cls(
            delivery,
            on_plan,
            plan_topic=topic["plan"],
            ack_topic=topic["ack"],
            min_s=tally_min_s if tally_min_s is not None else cfg.get("tally_interval_s", 300.0),
            max_s=tally_max_s,
            full_s=tally_full_s,
        )

    def subscriptions(self) -> list[tuple[str, int]]:
        """The topics (QoS 1) for a new connection, on which a full tally becomes due."""
        subs = [(self.plan_topic, 1)]
        if self.delivery is not None:
            subs.append((self.ack_topic, 1))
            self.due = True
        return subs

    def request(self, *, full: bool) -> None:
        """Publish the full tally, or the changed days, at the next chance."""
        if full:
            self.due = True
        else:
            self.at = -math.inf

    def on_message(self, topic: str, payload: bytes) -> bool:
        """Handle a message on the plan or the ack topic (others are ignored); True if an
        ack put rows back in the outbox."""
        if topic == self.plan_topic:
            self.plans_in += 1
            if self.on_plan is not None:
                try:
                    self.on_plan(bytes(payload))
                except Exception:  # noqa: BLE001 - a plan handler must not stop publishing
                    log.exception("the plan handler failed")
            return False
        if topic != self.ack_topic or self.delivery is None:
            return False
        self.acks_in += 1
        try:
            added = self.delivery.on_ack(payload)
        except VanboxError as e:  # PayloadError: malformed, StoreError: cannot write
            self.bad_acks += 1
            log.warning("ack from the hub ignored: %s", e)
            return False
        except Exception:  # noqa: BLE001 - e.g. sqlite3.Error
            self.bad_acks += 1
            log.exception("cannot handle the hub's ack")
            return False
        if added:
            self.resend_waiting = True
        return bool(added)

    def tally_wanted(self, now: float, mark: int, *, idle: bool) -> bool | None:
        """None if no tally is due at ``now``, else whether the full one is. ``mark``
        changes whenever the counts may have (rows acknowledged, thinned or re-sent);
        ``idle``: nothing is in flight or pending on the connection."""
        if self.resend_waiting and idle:
            self.due = True
            self.resend_waiting = False
        full = (
            self.due
            or now - self.full_at >= self.max_s
            or (mark != self.full_mark and now - self.full_at >= self.full_s)
        )
        if not full and (mark == self.mark or now - self.at < self.min_s):
            return None
        return full

    def asked(self, now: float, mark: int) -> None:
        """A tally was asked of the delivery at ``now`` (whether or not it had one)."""
        self.mark = mark
        self.at = now

    def published(self, now: float, *, full: bool) -> None:
        """A tally went out (retained if ``full``)."""
        if full:
            self.due = False
            self.full_at = now
            self.full_mark = self.mark
        self.tallies += 1
