"""Configuration: defaults are valid, every bad value names its key and the fix."""

from pathlib import Path

import pytest

from telemetry.config import DEFAULTS, default_config, load_config
from telemetry.errors import ConfigError


def test_defaults_are_valid_and_cover_the_seven_municipalities():
    cfg = default_config()
    assert cfg.van["id"] == "jungregio-1"
    assert cfg.timezone == "Europe/Berlin"
    munis = {s.municipality for s in cfg.tour}
    assert munis == {"Peine", "Edemissen", "Hohenhameln", "Ilsede", "Lengede", "Vechelde",
                     "Wendeburg"}  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"gps": {"baud": 9601}}, "gps.baud = 9601: not a standard rate; use 4800, 9600"),
        ({"mqtt": {"hots": "x"}}, "mqtt.hots: unknown key; did you mean mqtt.host?"),
        ({"mqtt": {"port": 0}}, "mqtt.port = 0: out of range"),
        ({"mqtt": {"port": "1883"}}, "mqtt.port = '1883': must be a number"),
        ({"mqtt": {"topic_prefix": "van/#"}}, "mqtt.topic_prefix = 'van/#': no wildcards"),
        ({"mqtt": {"password_file": "/x"}}, "mqtt.username = '': a password_file needs"),
        ({"sensor": {"kind": "laser"}}, "sensor.kind = 'laser': use one of door, beam"),
        ({"sensor": {"pin": 40}}, "sensor.pin = 40: use a BCM GPIO number"),
        ({"sensor": {"pin_b": 17}}, "sensor.pin_b = 17: the two beams need two different"),
        ({"timezone": "Mars/Olympus"}, "timezone = 'Mars/Olympus': unknown time zone"),
        ({"van": {"id": "Van 1"}}, "van.id = 'Van 1': use 1-40 lower-case"),
        ({"kiosk": {"languages": ["en", "de"]}}, "German comes first"),
        ({"tour": {"stops": [{"name": "x"}]}}, "tour.stops[0]: missing"),
        (
            {
                "tour": {
                    "stops": [
                        {
                            "name": "x",
                            "municipality": "Peine",
                            "lat": 52.3,
                            "lon": 10.2,
                            "weekdays": ["mon"],
                            "start": "14:00",
                            "end": "13:00",
                        }
                    ]
                }
            },
            "tour.stops[0].end = '13:00': must be after start 14:00",
        ),  # fmt: skip
        (
            {"privacy": {"hidden_zones": [{"name": "home", "lat": 0, "lon": 0}]}},
            "privacy.hidden_zones[0].lat = 0: 0,0 is not a place",
        ),
    ],
)
def test_bad_values_name_the_key_and_the_fix(overrides, message):
    with pytest.raises(ConfigError) as e:
        default_config(overrides)
    assert message in str(e.value)


def test_load_file_overrides_defaults(tmp_path: Path):
    p = tmp_path / "vanbox.toml"
    p.write_text('[van]\nid = "van-2"\n[gps]\nport = "/dev/ttyACM0"\nbaud = 4800\n')
    cfg = load_config(p)
    assert cfg.van["id"] == "van-2"
    assert cfg.gps == {**DEFAULTS["gps"], "port": "/dev/ttyACM0", "baud": 4800}
    assert cfg.source == str(p)


def test_missing_and_broken_files_give_clear_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="no such file; copy deploy/vanbox.example.toml"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[gps\nbaud = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_with_overrides_revalidates():
    cfg = default_config()
    assert cfg.with_overrides({"kiosk": {"port": 9000}}).kiosk["port"] == 9000
    with pytest.raises(ConfigError):
        cfg.with_overrides({"kiosk": {"port": -1}})
