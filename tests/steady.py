"""Where an element is once its page has settled, for tests that tap by coordinates.

A locator's ``tap()`` waits until its element stands still; ``page.touchscreen.tap(x, y)``
does not. On a loaded machine a box measured right after a navigation can be the page's
layout before its stylesheet or fonts arrived, and the taps then land on another button.
"""

from __future__ import annotations

import time


def steady_box(page, locator, *, timeout_s: float = 10.0) -> dict:
    """The bounding box of ``locator`` once the page has loaded (styles, fonts) and two
    measurements 50 ms apart agree."""
    # the element first: right after a tap the old page may still be the loaded one
    locator.wait_for(state="visible")
    page.wait_for_load_state("load")
    page.evaluate("document.fonts.ready.then(() => true)")
    deadline = time.monotonic() + timeout_s
    box = locator.bounding_box()
    while True:
        time.sleep(0.05)  # wall clock: the page's own clock may be paused by the test
        again = locator.bounding_box()
        if again == box and box is not None:
            return box
        if time.monotonic() > deadline:
            raise AssertionError(f"{locator} did not stand still: {box} then {again}")
        box = again


def steady_center(page, locator, *, timeout_s: float = 10.0) -> tuple[float, float]:
    """The middle of ``locator``'s settled box, where a finger would tap it."""
    box = steady_box(page, locator, timeout_s=timeout_s)
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
