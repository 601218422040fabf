"""deploy/vanbox.example.toml loads, lists every key of the defaults with its default
value, and explains each one in a comment."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from telemetry.config import DEFAULTS, default_config, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "vanbox.example.toml"


def flatten(d: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v and k != "tour":
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_example_loads():
    cfg = load_config(EXAMPLE)
    assert cfg.source == str(EXAMPLE)
    assert cfg.van["id"] == DEFAULTS["van"]["id"]


def test_example_covers_every_key_with_its_default():
    example = flatten(tomllib.loads(EXAMPLE.read_text(encoding="utf-8")))
    defaults = flatten(DEFAULTS)
    assert set(example) == set(defaults), {
        "missing from the example": sorted(set(defaults) - set(example)),
        "not in DEFAULTS": sorted(set(example) - set(defaults)),
    }
    differ = {k: (example[k], defaults[k]) for k in defaults if example[k] != defaults[k]}
    assert not differ, f"example value != default: {differ}"


def test_example_equals_built_in_config():
    a, b = load_config(EXAMPLE), default_config()
    for section in ("van", "gps", "sensor", "mqtt", "database", "kiosk", "privacy", "hub"):
        assert getattr(a, section) == getattr(b, section), section
    assert a.tour == b.tour


def test_every_key_is_explained():
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    tour = next(i for i, ln in enumerate(lines) if ln.startswith("[[tour.stops]]"))
    bare = []
    for i, ln in enumerate(lines[:tour]):
        if re.match(r"^[a-z_]+ = ", ln) and not lines[i - 1].startswith("#"):
            bare.append(ln)
    assert not bare, f"keys without a comment above: {bare}"
    # the tour plan's keys are explained once, before the first stop
    head = "\n".join(lines[tour - 8 : tour])
    for key in ("name", "municipality", "lat", "lon", "radius_m", "weekdays", "start", "end"):
        assert key in head
