"""The GPS reader: NMEA 0183 from a serial port (or a recording) to one fix per epoch.

Three layers, each usable on its own:

- :class:`NmeaDecoder` is pure (no I/O, no clock): it takes lines of bytes or text,
  checks every sentence's checksum itself, accepts every talker id (GP, GN, GL, GA, GB,
  BD, QZ, ...), groups the sentences that share one UTC time into one epoch and returns
  a :class:`Fix` per completed epoch. Line noise (binary, NULs, truncated or run-together
  sentences, bad checksums) is counted and skipped, never raised.
- :class:`FixFilter` flags implausible fixes (a jump faster than a maximum speed, an HDOP
  above a limit) as ``suspect`` and tells whether a fix is too old to be the live position.
- :class:`GpsReader` is a thread that reads a pyserial URL (``/dev/serial0``,
  ``/dev/ttyACM0``, ``socket://host:port``, a pty) through the decoder and calls
  ``on_fix`` for every epoch. When the port vanishes (USB receiver unplugged) it keeps
  retrying every ``reopen_s`` seconds and reads again as soon as the port is back.

``read_file(path)`` runs a recording through the same decoder (``#`` lines are comments).

The decoder, the filter, :class:`Fix` and ``read_file`` live in :mod:`firmware.nmea`;
they are imported here too, so ``from firmware.gps import ...`` keeps working.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .nmea import (
    GPS_WEEK_ROLLOVER,
    KNOTS_TO_MS,
    ROLLOVER_CUTOFF,
    Fix,
    FixFilter,
    NmeaDecoder,
    NoFixError,
    decode_lines,
    read_file,
)

__all__ = [
    "GPS_WEEK_ROLLOVER",
    "KNOTS_TO_MS",
    "ROLLOVER_CUTOFF",
    "Fix",
    "FixFilter",
    "GpsReader",
    "NmeaDecoder",
    "NoFixError",
    "decode_lines",
    "read_file",
]

log = logging.getLogger(__name__)

_MAX_LINE = 4096  # bytes; a "line" longer than this is noise


# --- the reader thread -------------------------------------------------------------------


class GpsReader:
    """Reads a pyserial URL in a thread and calls ``on_fix`` for every epoch.

    ``on_fix`` runs in the reader thread, for no-fix epochs (mode 1) too; an exception in
    it is logged and does not stop the reader. After ``idle_flush_s`` without data the
    pending epoch is completed (receivers pause between epochs), so the last fix of a
    burst is not held back until the next one.

    State for status displays: ``last_fix`` (the last epoch, any mode),
    ``last_fix_monotonic``, ``last_line_monotonic``, ``port_open``, ``lines_read``,
    ``bad_lines``, ``reconnects``, :attr:`rejected_fields` (fields refused for their
    bounds); :meth:`current_position` gives the live position
    (fix, not suspect, not stale) or ``None``.
    """

    def __init__(
        self,
        url: str,
        baud: int = 9600,
        *,
        on_fix: Callable[[Fix], None],
        fix_filter: FixFilter | None = None,
        reopen_s: float = 1.0,
        idle_flush_s: float = 0.5,
        read_timeout_s: float = 0.1,
    ) -> None:
        self.url = url
        self.baud = baud
        self.on_fix = on_fix
        self.fix_filter = fix_filter
        self.reopen_s = reopen_s
        self.idle_flush_s = idle_flush_s
        self.read_timeout_s = read_timeout_s
        self.decoder = NmeaDecoder()
        self.last_fix: Fix | None = None
        self.last_fix_monotonic: float | None = None
        self.last_position_fix: Fix | None = None  # the last fix with mode >= 2, not suspect
        self.last_position_monotonic: float | None = None
        self.last_line_monotonic: float | None = None
        self.loop_monotonic: float | None = None
        self.port_open = False
        self.lines_read = 0
        self.bad_lines = 0
        self.reconnects = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self.epochs = 0
        self._thread: threading.Thread | None = None
        self._port: Any = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"gps {self.url}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._close()

    @property
    def rejected_fields(self) -> int:
        """How many fields the decoder refused for their bounds (1e308, 25 digits...)."""
        return sum(self.decoder.rejected.values())

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def current_position(self, now_monotonic: float | None = None) -> Fix | None:
        """The live position: the last good fix, unless it is suspect or stale."""
        fix, at = self.last_position_fix, self.last_position_monotonic
        if fix is None or at is None:
            return None
        if self.last_fix is not None and self.last_fix.mode < 2:
            return None  # the receiver has since reported that it lost the fix
        age = (time.monotonic() if now_monotonic is None else now_monotonic) - at
        stale_after = self.fix_filter.stale_after_s if self.fix_filter else 10.0
        if age > stale_after:
            return None
        return fix

    # -- internals -----------------------------------------------------------------

    def _open(self) -> bool:
        import serial  # hardware library: imported where the port is opened

        try:
            self._port = serial.serial_for_url(
                self.url, baudrate=self.baud, timeout=self.read_timeout_s
            )
        except (serial.SerialException, OSError, ValueError) as e:
            if self.last_error != str(e):
                log.warning(
                    "GPS port %s cannot be opened (%s); retrying every %.1f s",
                    self.url,
                    e,
                    self.reopen_s,
                )
            self.last_error = str(e)
            self._port = None
            return False
        if self.last_error is not None:
            self.reconnects += 1
            log.info("GPS port %s is open again", self.url)
        self.last_error = None
        self.port_open = True
        return True

    def _close(self) -> None:
        port, self._port = self._port, None
        self.port_open = False
        if port is not None:
            try:
                port.close()
            except Exception:  # noqa: BLE001 - closing a vanished port may fail any way
                pass

    def _emit(self, fixes: list[Fix]) -> None:
        for fix in fixes:
            if self.fix_filter is not None:
                fix = self.fix_filter.check(fix)
            now = time.monotonic()
            self.last_fix, self.last_fix_monotonic = fix, now
            if fix.mode >= 2 and not fix.suspect:
                self.last_position_fix, self.last_position_monotonic = fix, now
            self.epochs += 1
            try:
                self.on_fix(fix)
            except Exception:  # noqa: BLE001 - a consumer bug must not stop the GPS
                log.exception("GPS: on_fix failed for %s", fix)

    def _feed(self, lines: list[bytes]) -> None:
        """Decode and report the complete lines of one read."""
        dec = self.decoder
        with self._lock:
            for line in lines:
                bad_before, ok_before = dec.bad, dec.sentences
                try:
                    fixes = dec.feed(line)
                except Exception:  # noqa: BLE001 - one crafted line must not stop the GPS
                    log.exception("GPS: decoder failed on %r; line skipped", line[:100])
                    dec.bad += 1
                    fixes = []
                if dec.bad != bad_before or (dec.sentences == ok_before and line.strip()):
                    self.bad_lines += 1
                if fixes:
                    self._emit(fixes)
                self.lines_read += 1
            self.last_line_monotonic = time.monotonic()

    def _flush(self) -> None:
        with self._lock:
            self._emit(self.decoder.flush())

    def settled(self) -> bool:
        """True when every line read so far has been decoded and reported: no epoch is
        waiting for its end (for tests and status displays)."""
        with self._lock:
            return not self.decoder.pending

    def _run(self) -> None:
        import serial

        buf = b""
        last_data = time.monotonic()
        while not self._stop.is_set():
            # The watchdog's sign of life: the loop goes round at least every read
            # timeout or reopen interval, with or without a receiver.
            self.loop_monotonic = time.monotonic()
            if self._port is None:
                if not self._open():
                    self._stop.wait(self.reopen_s)
                    continue
                buf = b""
            try:
                waiting = self._port.in_waiting
                data = self._port.read(waiting if waiting > 0 else 1)
            except (serial.SerialException, OSError, TypeError, AttributeError) as e:
                # The port vanished (USB unplugged, pty closed): complete what we have
                # and try to open it again.
                log.warning(
                    "GPS port %s lost (%s); retrying every %.1f s", self.url, e, self.reopen_s
                )
                self.last_error = str(e)
                self._close()
                if buf.strip():
                    self._feed([buf])
                buf = b""
                self._flush()
                self._stop.wait(self.reopen_s)
                continue
            now = time.monotonic()
            if not data:
                if self.decoder.pending and now - last_data >= self.idle_flush_s:
                    self._flush()
                continue
            last_data = now
            buf += data
            if b"\n" not in buf:
                if len(buf) > _MAX_LINE:
                    self._feed([buf])
                    buf = b""
                continue
            *lines, buf = buf.split(b"\n")
            self._feed(lines)
        self._close()
