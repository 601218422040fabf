"""The GPS boundary (issue 12 point 4): one crafted sentence never blocks writes or kills
the GPS thread. Every absurd number is rejected (the sentence, or just that field),
counted, never raised; through the box's record path the next good event is stored."""

from __future__ import annotations

from functools import reduce

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware import nmea_fields as fields
from firmware.box import Box
from firmware.gps import GpsReader
from firmware.nmea import KNOTS_TO_MS, NmeaDecoder
from telemetry.config import default_config
from telemetry.events import CheckIn, Footfall, utcnow
from tests.firmware.test_gps_reader import Pty, wait_for

HUGE = "9" * 25


def nmea(body: str) -> str:
    cs = reduce(lambda a, c: a ^ ord(c), body, 0)
    return f"${body}*{cs:02X}\r\n"


def gga(t="120000.00", lat="5219.2000", lon="01014.0400", q="1", sats="08", hdop="0.9",
        alt="70.0") -> str:  # fmt: skip
    return nmea(f"GPGGA,{t},{lat},N,{lon},E,{q},{sats},{hdop},{alt},M,46.9,M,,")


def rmc(t="120000.00", lat="5219.2000", lon="01014.0400", knots="10.0", track="90.0",
        day="260326") -> str:  # fmt: skip
    return nmea(f"GPRMC,{t},A,{lat},N,{lon},E,{knots},{track},{day},,,A")


def zda(t="120000.00", day="26", month="03", year="2026") -> str:
    return nmea(f"GPZDA,{t},{day},{month},{year},00,00")


def decode(*lines: str) -> tuple[list, NmeaDecoder]:
    dec = NmeaDecoder()
    out = []
    for line in lines:
        out += dec.feed(line)
    return out + dec.flush(), dec


# --- the examples of the issue, one by one ----------------------------------------------


def test_rmc_with_1e308_speed_drops_the_speed_keeps_the_fix():
    fixes, dec = decode(rmc(knots="1e308"))
    assert len(fixes) == 1 and fixes[0].mode == 2 and fixes[0].speed is None
    assert fixes[0].lat == pytest.approx(52.32) and dec.rejected["speed"] == 1
    assert dec.sentences == 1 and dec.bad == 0


def test_gga_with_a_25_digit_satellite_count_drops_the_count():
    fixes, dec = decode(gga(sats=HUGE))
    assert len(fixes) == 1 and fixes[0].mode == 3 and fixes[0].sats is None
    assert dec.rejected["sats"] == 1


def test_zda_with_a_25_digit_year_is_rejected_not_raised():
    fixes, dec = decode(zda(year=HUGE))
    assert fixes == [] and dec.bad == 1 and dec.rejected["year"] == 1
    # and the decoder goes on: the next ZDA dates the next epoch
    more, _ = decode(zda(year=HUGE), gga(t="120001.00"), zda(t="120001.00"))
    assert [f.time.year for f in more if f.time] == [2026]


@pytest.mark.parametrize(
    "line, field",
    [
        (gga(lat="9100.0000"), "latitude"),
        (gga(lon="18100.0000"), "longitude"),
        (gga(lat="1e308"), "latitude"),
        (gga(lon=HUGE), "longitude"),
        (rmc(day="320326"), "date"),
        (gga(t="250000.00"), "time"),
        (gga(t="12000" + "0" * 30), "time"),
        (gga(q=HUGE), "quality"),
    ],
)
def test_absurd_time_date_or_position_rejects_the_sentence(line, field):
    fixes, dec = decode(line)
    assert fixes == [] and dec.bad == 1 and dec.rejected[field] == 1


@pytest.mark.parametrize(
    "line, field",
    [
        (gga(hdop="1e300"), "hdop"),
        (gga(alt="1e300"), "alt"),
        (gga(alt="-1e300"), "alt"),
        (rmc(track="1e308"), "track"),
        (rmc(knots="-5"), "speed"),
        (rmc(knots="1" + "0" * 40), "speed"),
    ],
)
def test_absurd_optional_field_is_dropped_and_counted(line, field):
    fixes, dec = decode(line)
    assert len(fixes) == 1 and fixes[0].mode >= 2 and dec.rejected[field] == 1
    key = {"hdop": "hdop", "alt": "alt", "track": "track", "speed": "speed"}[field]
    assert getattr(fixes[0], key) is None


@pytest.mark.parametrize(
    "make, ok, bad, attr",
    [
        (lambda v: rmc(knots=v), "2000", "2000.01", "speed"),
        (lambda v: rmc(track=v), "360.0", "360.01", "track"),
        (lambda v: gga(sats=v), "99", "100", "sats"),
        (lambda v: gga(hdop=v), "99.99", "100.0", "hdop"),
        (lambda v: gga(alt=v), "50000.0", "50000.1", "alt"),
        (lambda v: gga(alt=v), "-1500.0", "-1500.1", "alt"),
    ],
)
def test_field_bounds_just_inside_and_just_outside(make, ok, bad, attr):
    inside, d1 = decode(make(ok))
    outside, d2 = decode(make(bad))
    assert getattr(inside[0], attr) is not None and sum(d1.rejected.values()) == 0
    assert getattr(outside[0], attr) is None and sum(d2.rejected.values()) == 1
    if attr == "speed":
        assert inside[0].speed == pytest.approx(2000 * KNOTS_TO_MS)


@pytest.mark.parametrize("year, ok", [("1980", True), ("1979", False), ("2099", True),
                                      ("2100", False)])  # fmt: skip
def test_zda_year_bounds(year, ok):
    fixes, dec = decode(zda(year=year))
    assert (dec.bad == 0) is ok and (len(fixes) == 1) is ok


def test_text_that_is_no_number_still_rejects_the_sentence():
    for line in (gga(hdop="nan"), gga(sats="1_0"), rmc(knots="inf"), gga(alt=" 70")):
        fixes, dec = decode(line)
        assert fixes == [] and dec.bad == 1, line


def test_parsers_never_raise_anything_but_field_error():
    for s in (HUGE, "1e999", "-1e999", "nan", "1_000", "0x10", "", "9" * 5000, "½", "١٢"):
        for fn in (
            lambda s: fields.bounded_float("x", s, 0, 1),
            lambda s: fields.bounded_int("x", s, 0, 1),
            lambda s: fields.tod(s),
            lambda s: fields.coord(s, "N", 90),
            lambda s: fields.zda_date("01", "01", s),
            lambda s: fields.rmc_date(s),
        ):
            try:
                fn(s)
            except fields.FieldError:
                pass


# --- Hypothesis: absurd numbers through the decoder and the box's record path -----------

NUM = st.one_of(
    st.sampled_from(["1e308", "-1e308", "1e999", HUGE, "-" + HUGE, "0", "-0", "99.99", "100"]),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.from_regex(r"[0-9]{1,30}(\.[0-9]{0,10})?", fullmatch=True),
)


@st.composite
def sentences(draw) -> str:
    t = f"12{draw(st.integers(0, 59)):02d}{draw(st.integers(0, 59)):02d}.00"
    kind = draw(st.sampled_from(["GGA", "RMC", "ZDA", "GNS", "VTG", "GSA"]))
    n = draw(NUM)
    slot = draw(st.integers(0, 9))
    if kind == "GGA":
        f = [t, "5219.2000", "N", "01014.0400", "E", "1", "08", "0.9", "70.0", "M"]
    elif kind == "RMC":
        f = [t, "A", "5219.2000", "N", "01014.0400", "E", "10.0", "90.0", "260326", "", "",
             "A"]  # fmt: skip
    elif kind == "ZDA":
        f = [t, "26", "03", "2026", "00", "00"]
    elif kind == "GNS":
        f = [t, "5219.2000", "N", "01014.0400", "E", "AA", "08", "0.9", "70.0", "46.9"]
    elif kind == "VTG":
        f = ["90.0", "T", "", "M", "10.0", "N", "18.5", "K", "A"]
    else:
        f = ["A", "3", *["01"] * 12, "1.5", "0.9", "1.2"]
    slot %= len(f)
    if f[slot] not in ("N", "E", "A", "T", "M", "K", "AA"):
        f[slot] = n
    else:
        f[(slot + 1) % len(f)] = n
    return nmea(f"GP{kind}," + ",".join(f))


def in_bounds(fix) -> bool:
    return (
        (fix.lat is None or -90 <= fix.lat <= 90)
        and (fix.lon is None or -180 <= fix.lon <= 180)
        and (fix.speed is None or 0 <= fix.speed <= fields.SPEED_MAX_KNOTS * KNOTS_TO_MS)
        and (fix.track is None or 0 <= fix.track <= 360)
        and (fix.hdop is None or 0 <= fix.hdop <= fields.HDOP_MAX)
        and (fix.alt is None or fields.ALT_MIN_M <= fix.alt <= fields.ALT_MAX_M)
        and (fix.sats is None or 0 <= fix.sats <= fields.SATS_MAX)
        and (fix.time is None or 1980 <= fix.time.year <= 2200)
    )


@pytest.fixture(scope="module")
def record_box(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("box")
    cfg = default_config({"database": {"path": str(tmp / "box.db")}, "sensor": {"kind": "none"}})
    box = Box(cfg, gps_url=str(tmp / "no-gps"), mqtt=False, web=False)
    yield box
    box.store.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(st.lists(sentences(), min_size=1, max_size=6))
def test_absurd_sentences_through_the_record_path_never_block_the_next_event(record_box, lines):
    box = record_box
    dec = NmeaDecoder()
    fixes = []
    for line in [rmc(), *lines]:  # a good RMC first: the epochs have a date
        fixes += dec.feed(line)  # never raises
    fixes += dec.flush()
    for fix in fixes:
        assert in_bounds(fix), fix
        box.on_fix(fix)
    before = box.store.count("footfall")
    box.record(Footfall(time=utcnow(), kind="pass"))
    assert box.store.count("footfall") == before + 1  # the next good event is stored
    assert box.retry_depth == 0


def test_gps_thread_survives_every_example_and_reports_the_next_fix(tmp_path):
    """Through a real pty: the reader thread stays alive; the good fix after is stored."""
    cfg = default_config({"database": {"path": str(tmp_path / "box.db")}})
    pty = Pty()
    box = Box(cfg, gps_url=pty.path, mqtt=False, web=False)
    box.gps = GpsReader(pty.path, on_fix=box.on_fix, idle_flush_s=0.2)
    box.gps.start()
    wait_for(lambda: box.gps.port_open, "the reader to open the pty")  # open flushes input
    try:
        poison = [rmc(knots="1e308"), gga(t="120001.00", sats=HUGE), zda(t="120002.00",
                  year=HUGE), rmc(t="120003.00", track="1e308"), gga(t="120004.00",
                  hdop="1e300", alt="1e300")]  # fmt: skip
        for line in poison:
            pty.write(line.encode())
        pty.write(rmc(t="120010.00", lat="5220.0000").encode())
        wait_for(lambda: box.gps.rejected_fields == 6, "speed, sats, year, track, hdop, alt")
        wait_for(lambda: box.store.count("positions") >= 2, "the fixes before and after")
        assert box.gps.is_alive()
        box.record(CheckIn(time=utcnow(), age_group="18-20", topics=("job",)))
        assert box.store.count("checkins") == 1 and box.retry_depth == 0
    finally:
        box.gps.stop()
        pty.close()
        box.store.close()
