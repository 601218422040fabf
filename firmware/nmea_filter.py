"""Plausibility and freshness of GPS fixes: :class:`FixFilter`.

Imported by :mod:`firmware.nmea` too, so ``from firmware.nmea import FixFilter`` works.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from telemetry.geo import distance_m

from .nmea_epoch import Fix

log = logging.getLogger("firmware.nmea")


class FixFilter:
    """Plausibility and freshness of fixes.

    - Jump filter: a fix implying a speed above ``max_speed_kmh`` from the last accepted
      fix is flagged ``suspect``. After ``reanchor_after`` suspect fixes in a row that agree
      with each other, the filter accepts the new place (the first fix was the bad one,
      or the receiver was moved while off).
    - HDOP limit: a fix with HDOP above ``max_hdop`` is flagged ``suspect``.
    - Staleness: a fix received more than ``stale_after_s`` seconds ago is not the
      current position (:meth:`is_stale`).
    Suspect fixes are kept (stored, flagged) but never published as the live position.
    """

    def __init__(
        self,
        max_speed_kmh: float = 200.0,
        max_hdop: float = 20.0,
        stale_after_s: float = 10.0,
        *,
        reanchor_after: int = 5,
    ) -> None:
        self.max_speed_ms = max_speed_kmh / 3.6
        self.max_hdop = max_hdop
        self.stale_after_s = stale_after_s
        self.reanchor_after = reanchor_after
        self._anchor: Fix | None = None
        self._chain: list[Fix] = []

    @classmethod
    def from_config(cls, gps: dict[str, Any]) -> FixFilter:
        """From the ``[gps]`` section of the configuration."""
        return cls(
            max_speed_kmh=float(gps["max_speed_kmh"]),
            max_hdop=float(gps["max_hdop"]),
            stale_after_s=float(gps["stale_after_s"]),
        )

    def _too_fast(self, a: Fix, b: Fix) -> bool:
        assert a.lat is not None and a.lon is not None and b.lat is not None and b.lon is not None
        dist = distance_m(a.lat, a.lon, b.lat, b.lon)
        if a.time is None or b.time is None:
            return False
        dt = abs((b.time - a.time).total_seconds())
        # Allow one second of timing slack: receivers round, and fixes can share a time.
        return dist > self.max_speed_ms * max(dt, 1.0)

    def check(self, fix: Fix) -> Fix:
        """``fix``, flagged ``suspect`` if implausible. No-fix epochs pass unchanged."""
        if fix.mode < 2 or fix.lat is None or fix.lon is None:
            return fix
        if fix.hdop is not None and fix.hdop > self.max_hdop:
            return replace(fix, suspect=True)
        if self._anchor is None or not self._too_fast(self._anchor, fix):
            self._anchor = fix
            self._chain.clear()
            return fix
        if self._chain and self._too_fast(self._chain[-1], fix):
            self._chain.clear()
        self._chain.append(fix)
        if len(self._chain) >= self.reanchor_after:
            log.info(
                "GPS: %d consistent fixes far from the last one; accepting the new place",
                len(self._chain),
            )
            self._anchor = fix
            self._chain.clear()
            return fix
        return replace(fix, suspect=True)

    def is_stale(self, age_s: float | None) -> bool:
        """True when a fix received ``age_s`` seconds ago is too old to be current."""
        return age_s is None or age_s > self.stale_after_s
