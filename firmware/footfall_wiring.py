"""The footfall sensors' wiring: which electrical level means "door open" or "beam
broken", and opening a GPIO input with gpiozero (imported only here, and only when a
sensor is opened).

Electrical convention (BCM pin numbers; ``pull_up=True``, the default and the usual
wiring, uses the Pi's internal pull-up resistor):

=========  ==================================================  ===========  ===========
kind       wiring with ``pull_up=True``                        line HIGH    line LOW
=========  ==================================================  ===========  ===========
door       reed contact between GPIO and GND, closed while     door open    door shut
           the door is shut (magnet beside it)
beam       IR receiver's open-collector output between GPIO    beam clear   beam broken
           and GND; it conducts while the beam is broken (as
           the common 3 mm/5 mm IR break-beam modules do)
=========  ==================================================  ===========  ===========

With ``pull_up=False`` the Pi pulls the line down and the contact or output switches it
to 3V3, so both columns swap (door shut = HIGH, beam broken = HIGH). A receiver that
conducts while it *sees* its beam ("light-on" output) needs ``invert=True``.

A broken wire to a door contact reads as "door open" and turns into a ``sensor_blocked``
event after ``blocked_after_s``; a broken wire to a beam receiver reads as "beam clear"
and shows only as missing counts.

gpiozero's mock pins ignore ``bounce_time``, and real pins' bounce handling only
suppresses edges after the first one; so ``bounce_time`` is ``None`` and the
:class:`~firmware.footfall_logic.Debouncer` does the work, the same on the Pi as in the
tests.
"""

from __future__ import annotations

from typing import Any

from telemetry.errors import VanboxError


class SensorError(VanboxError):
    """The footfall sensor cannot be opened (bad kind, pin in use, no GPIO)."""


# For each sensor kind: is the logical level (open / broken) the level at which the
# pull resistor holds the line, i.e. gpiozero's *inactive* state? (See the table above.)
ACTIVE_AT_REST = {"door": True, "beam": False, "beam-pair": False}


def active_is_high(kind: str, *, pull_up: bool = True, invert: bool = False) -> bool:
    """The electrical level of "door open" / "beam broken" for a sensor kind and wiring:
    True = HIGH. ``active_is_high("door")`` is True, ``active_is_high("beam")`` False."""
    if kind not in ACTIVE_AT_REST:
        raise SensorError(f"unknown sensor kind {kind!r}; use door, beam or beam-pair")
    # gpiozero's active level is LOW with a pull-up, HIGH with a pull-down.
    gz_active_high = not pull_up
    return gz_active_high ^ ACTIVE_AT_REST[kind] ^ bool(invert)


def open_input(pin: int | str, pull_up: bool, pin_factory: Any) -> Any:
    """Open one GPIO input (a gpiozero ``DigitalInputDevice``, ``bounce_time=None``: see
    above); :class:`SensorError` when it cannot be opened."""
    from gpiozero import DigitalInputDevice, GPIOZeroError

    try:
        return DigitalInputDevice(pin, pull_up=pull_up, bounce_time=None, pin_factory=pin_factory)
    except GPIOZeroError as e:
        raise SensorError(
            f"cannot open GPIO pin {pin} for the footfall sensor: {e} "
            "(without GPIO hardware, set GPIOZERO_PIN_FACTORY=mock)"
        ) from e
