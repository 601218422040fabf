"""Setting the clock from GPS: the pure decision, and the wrapper with a fake setter."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from firmware.gps_clock import EARLIEST, GpsClock, decide

FIX = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
STALE_BOOT = datetime(2026, 11, 20, 18, 0, 0, tzinfo=UTC)  # fake-hwclock's last shutdown


def base(**kw):
    args = dict(
        enabled=True,
        synchronized=False,
        fix_time=FIX,
        fix_mode=3,
        fix_age_s=0.5,
        system_time=STALE_BOOT,
    )
    args.update(kw)
    return decide(**args)


def test_sets_clock_from_fresh_fix_when_unsynchronised():
    d = base()
    assert d.set_clock
    assert d.target == FIX + timedelta(seconds=0.5)  # the fix's age is added


def test_reasons_not_to_set():
    assert not base(enabled=False).set_clock
    assert not base(synchronized=True).set_clock
    assert not base(synchronized=None).set_clock  # unknown: never fight NTP
    assert not base(already_set=True).set_clock
    assert not base(fix_time=None).set_clock
    assert not base(fix_mode=1).set_clock
    assert not base(fix_age_s=5.0).set_clock
    assert not base(fix_age_s=-1.0).set_clock
    assert not base(fix_time=FIX.replace(tzinfo=None)).set_clock
    assert not base(system_time=FIX + timedelta(seconds=1)).set_clock  # close enough


def test_week_rollover_date_rejected():
    rolled = FIX - timedelta(weeks=1024)
    d = base(fix_time=rolled)
    assert not d.set_clock and "rollover" in d.reason
    assert base(fix_time=EARLIEST + timedelta(days=1)).set_clock


def test_clock_ahead_is_set_back():
    d = base(system_time=FIX + timedelta(hours=3))
    assert d.set_clock and d.target < FIX + timedelta(hours=3)


def test_wrapper_sets_once_and_writes_stamp(tmp_path):
    calls = []
    gc = GpsClock(
        True,
        synchronized=lambda: False,
        setter=calls.append,
        stamp=tmp_path / "run" / "stamp",
        check_every_s=0,
    )
    old = datetime(2025, 1, 1, tzinfo=UTC)
    now = time.monotonic()
    assert not gc.offer(None, 1, now)  # no fix yet
    assert gc.offer(old, 3, now)
    assert len(calls) == 1 and abs((calls[0] - old).total_seconds()) < 2
    assert (tmp_path / "run" / "stamp").read_text().startswith("2025-01-01")
    assert not gc.offer(old, 3, time.monotonic())  # at most once per boot
    assert len(calls) == 1


def test_wrapper_without_permission_gives_up(tmp_path):
    def denied(t):
        raise PermissionError(1, "Operation not permitted")

    gc = GpsClock(
        True, synchronized=lambda: False, setter=denied, stamp=tmp_path / "s", check_every_s=0
    )
    assert not gc.offer(datetime(2025, 1, 1, tzinfo=UTC), 3, time.monotonic())
    assert gc.done and not (tmp_path / "s").exists()


def test_wrapper_disabled_or_synchronised_never_sets(tmp_path):
    calls = []
    for gc in (
        GpsClock(False, synchronized=lambda: False, setter=calls.append, stamp=None),
        GpsClock(True, synchronized=lambda: True, setter=calls.append, stamp=None),
    ):
        assert not gc.offer(datetime(2025, 1, 1, tzinfo=UTC), 3, time.monotonic())
    assert calls == []


def test_clock_state_is_asked_rarely():
    asked = []

    def synced() -> bool:
        asked.append(1)
        return True

    gc = GpsClock(True, synchronized=synced, setter=lambda t: None, stamp=None, check_every_s=3600)
    for _ in range(100):  # a fix a second
        gc.offer(datetime(2025, 1, 1, tzinfo=UTC), 3, time.monotonic())
    assert len(asked) == 1
    gc.offer(None, 1, time.monotonic())  # fixes without a time never ask
    assert len(asked) == 1
