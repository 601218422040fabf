"""Who imports whom (DESIGN.md): telemetry is the ground floor, kiosk sits on it, the hub
on both, firmware on top; drivers never speak MQTT or HTTP; hardware libraries are
imported only where hardware is opened."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "telemetry": {"firmware", "kiosk", "hub"},
    "kiosk": {"firmware", "hub"},
    "hub": {"firmware"},
}
DRIVERS = ("firmware/gps.py", "firmware/nmea.py", "firmware/footfall.py",
           "firmware/footfall_logic.py", "firmware/footfall_sensor.py",
           "firmware/footfall_wiring.py", "firmware/gps_clock.py", "firmware/nmea_epoch.py",
           "firmware/nmea_fields.py", "firmware/nmea_filter.py")  # fmt: skip


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers(package):
    bad = []
    for f in sorted((ROOT / package).rglob("*.py")):
        for mod in _imports(f):
            if mod.split(".")[0] in FORBIDDEN[package]:
                bad.append(f"{f.relative_to(ROOT)} imports {mod}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("driver", DRIVERS)
def test_drivers_speak_neither_mqtt_nor_http(driver):
    path = ROOT / driver
    if not path.exists():
        pytest.skip(f"{driver} is not part of this tree")
    mods = {m.split(".")[0] for m in _imports(path)}
    assert not mods & {"paho", "flask", "waitress", "kiosk", "hub"}


def test_the_rule_bites(tmp_path):
    """The checker sees a forbidden import when there is one."""
    f = tmp_path / "m.py"
    f.write_text("import os\nfrom firmware.box import Box\n", encoding="utf-8")
    assert "firmware.box" in _imports(f)
