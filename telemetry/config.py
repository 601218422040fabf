"""The one TOML configuration file, validated at start.

``load_config(path)`` reads ``/etc/vanbox/vanbox.toml`` (or any path), lays it over the
built-in defaults and checks every value. A bad value raises :class:`ConfigError` whose
message names the key and the fix, e.g.::

    gps.baud = 9601: not a standard rate; use 4800, 9600, 38400 or 115200

``default_config()`` is the built-in configuration the demo runs with (no file needed).
Unknown keys are errors too (with a "did you mean" hint), so a typo never silently
falls back to a default.

The parts: the built-in defaults and allowed value sets in :mod:`telemetry.config_defaults`,
the merge over the defaults and the checks of single values in :mod:`telemetry.config_checks`,
the :class:`Config` and the check of every section in :mod:`telemetry.config_build` (the
funders' sections in :mod:`telemetry.config_funders`). Their public names are importable
from here.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from .config_build import Config as Config
from .config_build import TourStop as TourStop
from .config_build import Zone as Zone
from .config_build import _build
from .config_checks import _merge, _short
from .config_defaults import BAUD_RATES as BAUD_RATES
from .config_defaults import DEFAULT_TOUR as DEFAULT_TOUR
from .config_defaults import DEFAULTS as DEFAULTS
from .config_defaults import GPIO_PINS as GPIO_PINS
from .config_defaults import MAX_STRING as MAX_STRING
from .config_defaults import MUNICIPALITIES as MUNICIPALITIES
from .config_defaults import SENSOR_KINDS as SENSOR_KINDS
from .config_defaults import TOWN as TOWN
from .config_defaults import WEEKDAYS as WEEKDAYS
from .errors import ConfigError as ConfigError

DEFAULT_PATH = Path("/etc/vanbox/vanbox.toml")


def default_config(overrides: dict[str, Any] | None = None) -> Config:
    return _checked(overrides or {}, "built-in defaults")


MAX_FILE_BYTES = 1 << 20  # a config file is a few KiB; more is a mistake


def load_config(path: str | Path = DEFAULT_PATH) -> Config:
    """The validated config from the file. Raises :class:`ConfigError` (one line naming
    the file or key and the fix) for every problem, never anything else."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file; copy deploy/vanbox.example.toml there and edit it"
        ) from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from None
    except ValueError as e:  # e.g. a NUL byte in the path
        raise ConfigError(f"{_short(str(path))}: not a usable path ({e})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(
            f"{path}: larger than {MAX_FILE_BYTES // 1024} KiB; is it the right file?"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}, line {line}: not UTF-8 (byte 0x{raw[e.start]:02x}); save the file as UTF-8"
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # any line ends, as text mode
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except (ValueError, RecursionError, MemoryError) as e:  # e.g. a number of 5,000 digits
        raise ConfigError(f"{path}: not usable TOML: {_short(str(e))}") from None
    return _checked(data, str(path))


def _checked(data: dict[str, Any], source: str) -> Config:
    """_build(_merge(...)), with any slip of the checks turned into a ConfigError."""
    try:
        return _build(_merge(DEFAULTS, data, ""), source)
    except ConfigError:
        raise
    except (ValueError, TypeError, OverflowError, KeyError, AttributeError, RecursionError) as e:
        raise ConfigError(f"{source}: a value cannot be used ({_short(str(e))})") from None
