"""Laying a configuration over the defaults, and the checks of single values.

:func:`_merge` lays the file's tables over the defaults; an unknown key is an error with
a "did you mean" hint, so a typo never silently falls back to a default. The checks
(:func:`_num`, :func:`_bool`, :func:`_str`, :func:`_feed_topic`, :func:`_hhmm`,
:func:`_latlon`) return the value or raise :class:`ConfigError` whose message names the
key, shows the value (short, one line, printable: :func:`_show`) and the fix.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
from datetime import time as dtime
from typing import Any

from .config_defaults import MAX_STRING
from .errors import ConfigError

# --- merging -------------------------------------------------------------------------


def _merge(base: dict[str, Any], over: dict[str, Any], prefix: str) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        name = _short(f"{prefix}{key}")
        if key not in base:
            hint = difflib.get_close_matches(key, list(base), n=1)
            fix = f"; did you mean {prefix}{hint[0]}?" if hint else "; remove it"
            raise ConfigError(f"{name}: unknown key{fix}")
        if isinstance(base[key], dict) and base[key] and key != "tour":
            if not isinstance(value, dict):
                raise ConfigError(f"{name} must be a table ([{name}])")
            out[key] = _merge(base[key], value, f"{name}.")
        elif key == "tour":
            if not isinstance(value, dict) or set(value) - {"stops"}:
                raise ConfigError("tour: expected only [[tour.stops]] entries")
            out[key] = copy.deepcopy(value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# --- checking ------------------------------------------------------------------------


def _short(text: str, limit: int = 80) -> str:
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(value: Any) -> str:
    """A short, one-line, printable repr of a value (a huge number cannot even be
    printed in full: Python refuses ints of more than 4,300 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"a {value.bit_length()}-bit number"
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        return f"a {type(value).__name__}"
    return _short(text)


def _fail(key: str, value: Any, why: str) -> ConfigError:
    return ConfigError(f"{key} = {_show(value)}: {why}")


def _num(
    d: dict, sec: str, key: str, lo: float, hi: float, *, integer: bool = False
) -> float | int:
    v = d[key]
    name = f"{sec}.{key}"
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _fail(name, v, "must be a number")
    if isinstance(v, int) and v.bit_length() > 64:  # math.isfinite() would overflow
        raise _fail(name, v, f"out of range; use a value from {lo:g} to {hi:g}")
    if not math.isfinite(v):
        raise _fail(name, v, "must be a number")
    if integer and not isinstance(v, int):
        raise _fail(name, v, "must be a whole number")
    if not lo <= v <= hi:
        raise _fail(name, v, f"out of range; use a value from {lo:g} to {hi:g}")
    return v


def _bool(d: dict, sec: str, key: str) -> bool:
    v = d[key]
    if not isinstance(v, bool):
        raise _fail(f"{sec}.{key}", v, "must be true or false")
    return v


def _str(d: dict, sec: str, key: str, *, empty: bool = True) -> str:
    v = d[key]
    if not isinstance(v, str):
        raise _fail(f"{sec}.{key}", v, 'must be a string in quotes, e.g. "text"')
    if "\0" in v or len(v) > MAX_STRING:
        raise _fail(f"{sec}.{key}", v, f"no NUL characters and at most {MAX_STRING} characters")
    if not empty and not v.strip():
        raise _fail(f"{sec}.{key}", v, "must not be empty")
    return v


def _feed_topic(d: dict, sec: str, key: str) -> str:
    """A topic template with one ``{van}`` and no wildcards."""
    v = _str(d, sec, key, empty=False)
    rest = v.replace("{van}", "", 1)
    if "{van}" not in v or re.search(r"[{}+#\s]", rest) or v.startswith("/") or "//" in v:
        raise _fail(
            f"{sec}.{key}",
            v,
            'a topic with one {van} and no + # or spaces, e.g. "owntracks/vanbox/{van}"',
        )
    return v


def _hhmm(v: Any, key: str) -> dtime:
    if not isinstance(v, str) or not re.fullmatch(r"\d{1,2}:\d{2}", v):
        raise _fail(key, v, 'use 24-hour "HH:MM", e.g. "14:30"')
    h, m = map(int, v.split(":"))
    if h > 23 or m > 59:
        raise _fail(key, v, 'not a time of day; use "00:00" to "23:59"')
    return dtime(h, m)


def _latlon(d: dict, key: str) -> tuple[float, float]:
    for k, lim in (("lat", 90), ("lon", 180)):
        v = d.get(k)
        if isinstance(v, bool) or not isinstance(v, int | float) or not -lim <= v <= lim:
            raise _fail(f"{key}.{k}", v, f"must be decimal degrees from -{lim} to {lim}")
    if d["lat"] == 0 and d["lon"] == 0:
        raise _fail(f"{key}.lat", 0, "0,0 is not a place in the Landkreis; give real coordinates")
    return float(d["lat"]), float(d["lon"])
