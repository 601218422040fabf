"""Property-based tests (hypothesis): line noise never breaks the decoder or sneaks in a fix.

Random bytes, truncated and run-together sentences, bad checksums and NULs mixed into the
real recordings: no exception escapes, no fix at 0,0, and no fix is taken from a sentence
with a bad checksum.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import reduce

import pynmea2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware.nmea import Fix, NmeaDecoder, decode_lines
from tests.conftest import CORPUS

LOGS = sorted(p.name for p in CORPUS.glob("*.log")) if CORPUS.is_dir() else []
_LINES = {
    name: [x for x in (CORPUS / name).read_bytes().split(b"\n") if not x.startswith(b"#")]
    for name in LOGS
}
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def checksum(body: str) -> str:
    return f"{reduce(lambda a, c: a ^ ord(c), body, 0):02X}"


def decode_all(lines: list[bytes]) -> list[Fix]:
    dec = NmeaDecoder()
    out: list[Fix] = []
    for line in lines:
        out += dec.feed(line)
    return out + dec.flush()


def positions_in_valid_sentences(lines: list[bytes]) -> set[tuple[float, float]]:
    """Every lat/lon carried by a sentence with a good checksum and no control characters,
    found by pynmea2 (an independent parser)."""
    out = set()
    for line in lines:
        for seg in line.decode("latin-1").split("$")[1:]:
            seg = seg.rstrip("\r\n\t ")
            if not (seg.isascii() and seg.isprintable()) or "*" not in seg:
                continue
            try:
                msg = pynmea2.parse("$" + seg, check=True)
                lat, lon = msg.latitude, msg.longitude
            except Exception:  # noqa: BLE001 - anything pynmea2 cannot read carries nothing
                continue
            out.add((lat, lon))
    return out


def near_one_of(lat: float, lon: float, positions: set[tuple[float, float]]) -> bool:
    return any(abs(lat - a) < 1e-7 and abs(lon - b) < 1e-7 for a, b in positions)


# --- random bytes ------------------------------------------------------------------------


@SETTINGS
@given(st.lists(st.binary(max_size=300), max_size=30))
def test_random_bytes_never_raise_or_fix(chunks: list[bytes]) -> None:
    fixes = decode_all(chunks)
    assert all(f.mode == 1 for f in fixes)  # random bytes never pass a checksum here


@SETTINGS
@given(
    st.lists(st.text(alphabet="$*,.0123456789ABCDEFGNPRSTVWZ\r\n\x00", max_size=120), max_size=40)
)
def test_nmea_like_noise_never_raises(lines: list[str]) -> None:
    for fix in decode_all([x.encode("latin-1") for x in lines]):
        if fix.mode >= 2:
            assert fix.lat is not None and fix.lon is not None
            assert not (fix.lat == 0 and fix.lon == 0)


# --- noise mixed into real recordings ------------------------------------------------------

_op = st.sampled_from(["truncate", "join", "nul", "flip", "insert", "split"])
_mutation = st.tuples(
    _op, st.integers(min_value=0), st.integers(min_value=0), st.binary(max_size=40)
)


def mutate(lines: list[bytes], mutations: list[tuple[str, int, int, bytes]]) -> list[bytes]:
    lines = list(lines)
    for op, i, j, payload in mutations:
        if not lines:
            break
        i %= len(lines)
        line = lines[i]
        k = j % (len(line) + 1)
        if op == "truncate":
            lines[i] = line[:k]
        elif op == "join" and i + 1 < len(lines):
            lines[i : i + 2] = [line.rstrip(b"\r") + lines[i + 1]]
        elif op == "nul":
            lines[i] = line[:k] + b"\x00" * (1 + j % 13) + line[k:]
        elif op == "flip" and line:
            k = min(k, len(line) - 1)
            lines[i] = line[:k] + bytes([line[k] ^ (1 + j % 255)]) + line[k + 1 :]
        elif op == "insert":
            lines[i] = line[:k] + payload + line[k:]
        elif op == "split":
            lines[i : i + 1] = [line[:k], line[k:]]
    return lines


@SETTINGS
@given(st.sampled_from(LOGS), st.lists(_mutation, max_size=25))
def test_noise_in_real_recordings(name: str, mutations) -> None:
    lines = mutate(_LINES[name], mutations)
    fixes = decode_all(lines)  # no exception escapes
    valid = positions_in_valid_sentences(lines)
    for fix in fixes:
        if fix.mode < 2:
            assert fix.lat is None and fix.lon is None
            continue
        assert not (fix.lat == 0 and fix.lon == 0)
        # the position comes from a sentence whose checksum is good
        assert near_one_of(fix.lat, fix.lon, valid), fix


# --- bad checksums never make a fix --------------------------------------------------------


def _epoch_lines(i: int, lat_deg: int, lat_min4: int, lon_deg: int, lon_min4: int):
    """GGA and RMC bodies of epoch ``i``; minutes in 1/10000 (so no rounding to 60)."""
    hhmmss = (datetime(2026, 3, 26, 10, 0, tzinfo=UTC) + timedelta(seconds=i)).strftime("%H%M%S.00")
    la = f"{lat_deg:02d}{lat_min4 // 10000:02d}.{lat_min4 % 10000:04d}"
    lo = f"{lon_deg:03d}{lon_min4 // 10000:02d}.{lon_min4 % 10000:04d}"
    g = f"GPGGA,{hhmmss},{la},N,{lo},E,1,07,1.1,75.0,M,46.0,M,,"
    r = f"GPRMC,{hhmmss},A,{la},N,{lo},E,12.5,80.0,260326,,,A"
    return g, r, lat_deg + lat_min4 / 600_000, lon_deg + lon_min4 / 600_000


def _spoil(body: str, how: int, at: int) -> str:
    """The sentence with a bad checksum, a NUL, or cut short: never a good sentence."""
    good = f"${body}*{checksum(body)}"
    if how == 0:  # one character changed: the checksum no longer matches
        k = 1 + at % (len(body) - 1)
        c = body[k]
        new = "7" if c != "7" else "3"
        return f"${body[:k]}{new}{body[k + 1 :]}*{checksum(body)}"
    if how == 1:  # wrong checksum digits
        return f"${body}*{(int(checksum(body), 16) ^ (1 + at % 255)):02X}"
    if how == 2:  # NUL keeps the xor, but is not allowed
        k = 1 + at % (len(body) - 1)
        return f"${body[:k]}\x00{body[k:]}*{checksum(body)}"
    return good[: 1 + at % (len(good) - 2)]  # truncated, no checksum


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.integers(47, 54),
            st.integers(0, 599_999),
            st.integers(6, 14),
            st.integers(0, 599_999),
            st.sampled_from(["ok", "bad-gga", "bad-rmc", "bad-both"]),
            st.integers(0, 3),
            st.integers(0, 10_000),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_no_fix_from_a_sentence_with_a_bad_checksum(epochs) -> None:
    lines: list[str] = []
    expect: dict[int, tuple[int, float, float]] = {}  # second -> (mode, lat, lon)
    first_date = None
    enders: set[str] = set()
    last: str | None = None  # the last timed sentence of the previous intact epoch
    for i, (ld, lm, od, om, spoil, how, at) in enumerate(epochs):
        g, r, lat, lon = _epoch_lines(i, ld, lm, od, om)
        g_ok, r_ok = spoil not in ("bad-gga", "bad-both"), spoil not in ("bad-rmc", "bad-both")
        lines.append((f"${g}*{checksum(g)}" if g_ok else _spoil(g, how, at)) + "\r\n")
        lines.append((f"${r}*{checksum(r)}" if r_ok else _spoil(r, how, at)) + "\r\n")
        if g_ok or r_ok:
            # gpsd's cycle rule: once a cycle ender is known (the last timed sentence
            # before a time change), an epoch without one is a partial cycle, not reported
            kinds = {k for k, ok in (("GGA", g_ok), ("RMC", r_ok)) if ok}
            if last is not None:
                enders.add(last)
            if not enders or kinds & enders:
                expect[i] = (3 if g_ok else 2, lat, lon)
            last = "RMC" if r_ok else "GGA"
        if r_ok and first_date is None:
            first_date = i
    fixes = [f for f in decode_lines(lines) if f.mode >= 2]
    start = datetime(2026, 3, 26, 10, 0, tzinfo=UTC)
    got = {round(f.time_of_day) - 36_000: f for f in fixes}
    assert len(got) == len(fixes)
    assert set(got) == set(expect)  # exactly the epochs with an intact sentence
    for i, f in got.items():
        mode, lat, lon = expect[i]
        assert f.mode == mode
        assert abs(f.lat - lat) < 1e-9 and abs(f.lon - lon) < 1e-9
        if first_date is not None and i >= first_date:
            assert f.time == start + timedelta(seconds=i)
        else:
            assert f.time is None  # no good RMC yet: no date
