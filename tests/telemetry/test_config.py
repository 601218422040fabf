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


# --- hostile files: one ConfigError line, never a traceback (issue 12 point 7) --------

import math  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from telemetry.config import MAX_FILE_BYTES, Config  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "vanbox.example.toml"


def _load_one_line(path: Path) -> Config | str:
    """load_config's Config, or its ConfigError message, which must be one short line."""
    try:
        return load_config(path)
    except ConfigError as e:
        msg = str(e)
        assert "\n" not in msg and "\r" not in msg, msg
        assert 0 < len(msg) < 600, msg
        return msg


@pytest.mark.parametrize(
    "text, needle",
    [
        ("[gps]\nmax_hdop = 1e400\n", "gps.max_hdop = inf: must be a number"),
        ("[gps]\nmax_hdop = -1e400\n", "gps.max_hdop = -inf: must be a number"),
        ("[gps]\nmax_hdop = nan\n", "gps.max_hdop = nan: must be a number"),
        ("[gps]\nmax_hdop = inf\n", "must be a number"),
        ("[gps]\nbaud = 1000000000000000000000000000000\n", "gps.baud"),
        ("[sensor]\npin = 1000000000000000000000000000000\n", "sensor.pin"),
        ("[kiosk]\nport = 100000000000000000000000000000000000\n", "out of range"),
        ("[mqtt]\nport = " + "9" * 5000 + "\n", "not usable TOML"),
        ("[mqtt]\nport = 0x" + "f" * 5000 + "\n", "mqtt.port = a 20000-bit number: out of range"),
        ("[reports]\nannual_budget_eur = 0x" + "f" * 300 + "\n", "a 1200-bit number: out of"),
        ("[mqtt]\nport = 0x" + "f" * 1000 + "\n", "mqtt.port = a 4000-bit number"),
        ("[[privacy.hidden_zones]]\nlat = 1e400\nlon = 10.2\n", "privacy.hidden_zones[0].lat"),
        ("[[privacy.hidden_zones]]\nlat = 52.3\nlon = 10.2\nradius_m = nan\n", "radius_m"),
        ('timezone = "../../../etc/passwd"\n', "unknown time zone"),
        ('timezone = "Europe/"\n', "unknown time zone"),
        ('[staff]\npasswd_file = "a\\u0000b"\n', "no NUL characters"),
        ('[hub]\ntrusted_proxy = "nginx; rm"\n', "hub.trusted_proxy"),
        ('[kiosk]\ncookie_secure = "yes"\n', "kiosk.cookie_secure"),
        ('["a\\nb"]\nx = 1\n', "unknown key"),
        ("a = [" * 3000 + "]" * 3000 + "\n", "TOML"),
    ],
)
def test_huge_numbers_and_odd_values_give_one_clear_line(tmp_path: Path, text, needle):
    p = tmp_path / "vanbox.toml"
    p.write_text(text, encoding="utf-8")
    msg = _load_one_line(p)
    assert isinstance(msg, str), "a bad file was accepted"
    assert needle in msg


def test_non_utf8_file_names_the_line(tmp_path: Path):
    p = tmp_path / "vanbox.toml"
    p.write_bytes(b'[van]\nname = "Mobil"\nid = "caf\xe9"\n')  # Latin-1, not UTF-8
    msg = _load_one_line(p)
    assert msg == f"{p}, line 3: not UTF-8 (byte 0xe9); save the file as UTF-8"
    p.write_bytes(b"\xff\xfe[\x00v\x00a\x00n\x00]\x00")  # UTF-16
    assert "line 1: not UTF-8" in _load_one_line(p)


def test_file_size_limit(tmp_path: Path):
    p = tmp_path / "vanbox.toml"
    pad = "# " + "x" * 78 + "\n"
    p.write_text(pad * (MAX_FILE_BYTES // len(pad)), encoding="utf-8")  # just below
    assert isinstance(_load_one_line(p), Config)
    p.write_text(pad * (MAX_FILE_BYTES // len(pad) + 1), encoding="utf-8")  # just above
    assert "larger than 1024 KiB" in _load_one_line(p)


def test_directory_and_nul_in_path(tmp_path: Path):
    assert "cannot read" in _load_one_line(tmp_path)
    with pytest.raises(ConfigError):
        load_config(str(tmp_path / "a\0b"))


def test_new_keys_defaults_and_accepted_values():
    cfg = default_config()
    assert cfg.kiosk["cookie_secure"] is False and cfg.hub["trusted_proxy"] == ""
    cfg = default_config({"kiosk": {"cookie_secure": True}, "hub": {"trusted_proxy": "::1"}})
    assert cfg.kiosk["cookie_secure"] is True and cfg.hub["trusted_proxy"] == "::1"


def test_the_cli_prints_one_line_and_exits_2(tmp_path: Path):
    p = tmp_path / "vanbox.toml"
    p.write_bytes(b"[gps]\nmax_hdop = 1e400\nport = '\xff'\n")
    r = subprocess.run(
        [sys.executable, "-m", "firmware.cli", "run", "--config", str(p)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines == [
        f"vanbox run: error: {p}, line 3: not UTF-8 (byte 0xff); save the file as UTF-8"
    ]
    assert "Traceback" not in r.stderr and r.stdout == ""


# Hypothesis: random values for every key, random TOML-ish bytes, mutated example files.


def _flat_keys(d: dict, prefix: str = "") -> list[tuple[str, str]]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict) and v and k != "tour":
            out += [(k if not prefix else prefix, kk) for _, kk in _flat_keys(v, k)]
        elif k not in ("tour",):
            out.append((prefix, k))
    return out


KEYS = _flat_keys(DEFAULTS)  # (section, key); section "" = top level


def _toml_escape(c: str) -> str:
    if c.isalnum() or c in " ./:-_":
        return c
    return f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}"


_toml_str = st.text(st.characters(exclude_categories=("Cs",)), max_size=30).map(
    lambda s: '"' + "".join(_toml_escape(c) for c in s) + '"'
)
_num_lit = st.one_of(
    st.integers(-(10**40), 10**40).map(str),
    st.sampled_from(
        [
            "1e400",
            "-1e400",
            "nan",
            "inf",
            "-inf",
            "+nan",
            "1e-400",
            "0x" + "f" * 40,
            "1e308",
            "-0.0",
            "9" * 400,
            "0x" + "f" * 300,
            "-" + "9" * 330,
            "1" + "0" * 4400,
            "0o777",
            "0b101",
        ]
    ),  # fmt: skip
    st.floats(allow_nan=True, allow_infinity=True).map(
        lambda f: (
            "nan" if math.isnan(f) else ("inf" if f > 0 else "-inf") if math.isinf(f) else repr(f)
        )
    ),
)
_scalar = st.one_of(
    _num_lit,
    _toml_str,
    st.sampled_from(
        [
            "true",
            "false",
            "1979-05-27T07:32:00Z",
            "07:32:00",
            "1979-05-27",
            "[]",
            "{}",
            '["de"]',
            '["en", "de"]',
        ]
    ),  # fmt: skip
)
_value = st.recursive(_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
    st.lists(st.tuples(st.sampled_from(["name", "lat", "lon", "radius_m", "x"]), inner),
             max_size=3, unique_by=lambda t: t[0]).map(
        lambda kv: "{" + ", ".join(f"{k} = {v}" for k, v in kv) + "}"),
), max_leaves=6)  # fmt: skip


@st.composite
def config_texts(draw) -> str:
    chosen = draw(st.lists(st.sampled_from(KEYS), max_size=8, unique=True))
    top = [f"{k} = {draw(_value)}" for sec, k in chosen if not sec]
    sections: dict[str, list[str]] = {}
    for sec, k in chosen:
        if sec:
            sections.setdefault(sec, []).append(f"{k} = {draw(_value)}")
    text = "\n".join(top) + "\n"
    for sec, lines in sections.items():
        text += f"[{sec}]\n" + "\n".join(lines) + "\n"
    if draw(st.booleans()):
        fields = ["name = " + draw(_value), "municipality = " + draw(_value),
                  "lat = " + draw(_value), "lon = " + draw(_value),
                  "weekdays = " + draw(_value), "start = " + draw(_value),
                  "end = " + draw(_value)]  # fmt: skip
        text += "[[tour.stops]]\n" + "\n".join(fields) + "\n"
    return text


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(text=config_texts())
def test_fuzz_random_values_for_every_key(tmp_path_factory, text):
    p = tmp_path_factory.mktemp("cfg") / "vanbox.toml"
    p.write_text(text, encoding="utf-8")
    _load_one_line(p)


@FUZZ
@given(data=st.binary(max_size=300))
def test_fuzz_random_bytes(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("cfg") / "vanbox.toml"
    p.write_bytes(data)
    _load_one_line(p)


_EXAMPLE_BYTES = EXAMPLE.read_bytes()


@FUZZ
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(_EXAMPLE_BYTES) - 1), st.binary(min_size=0, max_size=4)),
        min_size=1, max_size=6,
    )
)  # fmt: skip
def test_fuzz_mutated_example_file(tmp_path_factory, edits):
    data = bytearray(_EXAMPLE_BYTES)
    for pos, new in edits:
        pos = min(pos, len(data))
        data[pos : pos + len(new) or pos + 1] = new
    p = tmp_path_factory.mktemp("cfg") / "vanbox.toml"
    p.write_bytes(bytes(data))
    _load_one_line(p)


def test_windows_and_old_mac_line_ends_load(tmp_path: Path):
    p = tmp_path / "vanbox.toml"
    for nl in (b"\r\n", b"\r"):
        p.write_bytes(nl.join([b"[van]", b'id = "jr-2"', b'name = "Bus"', b""]))
        assert load_config(p).van["id"] == "jr-2"
