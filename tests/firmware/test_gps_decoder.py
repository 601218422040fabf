"""The pure NMEA decoder and the fix filter, with sentences made up by the tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import reduce

import pynmea2
import pytest

from firmware.nmea import (
    GPS_WEEK_ROLLOVER,
    Fix,
    FixFilter,
    NmeaDecoder,
    NoFixError,
    decode_lines,
    read_file,
)
from telemetry.config import default_config
from telemetry.errors import VanboxError
from telemetry.events import Position
from tests.conftest import CORPUS


def nmea(body: str) -> str:
    """A sentence with its correct checksum."""
    cs = reduce(lambda a, c: a ^ ord(c), body, 0)
    return f"${body}*{cs:02X}\r\n"


def gga(t="120000.00", lat="5219.2000", ns="N", lon="01014.0400", ew="E", q="1", sats="08",
        hdop="0.9", alt="70.0", talker="GP"):  # fmt: skip
    return nmea(f"{talker}GGA,{t},{lat},{ns},{lon},{ew},{q},{sats},{hdop},{alt},M,46.9,M,,")


def rmc(t="120000.00", status="A", lat="5219.2000", ns="N", lon="01014.0400", ew="E",
        knots="10.0", track="90.0", day="260326", faa="A", talker="GP"):  # fmt: skip
    return nmea(f"{talker}RMC,{t},{status},{lat},{ns},{lon},{ew},{knots},{track},{day},,,{faa}")


def gsa(mode="3", hdop="0.9", talker="GP"):
    return nmea(f"{talker}GSA,A,{mode},01,02,03,04,05,06,,,,,,,1.5,{hdop},1.2")


def decode(*lines: str) -> list[Fix]:
    return list(decode_lines(lines))


# --- epochs ------------------------------------------------------------------------


def test_one_epoch_from_gga_gsa_rmc():
    [fix] = decode(gga(), gsa(), rmc())
    assert fix.mode == 3
    assert fix.time == datetime(2026, 3, 26, 12, 0, tzinfo=UTC)
    assert fix.lat == pytest.approx(52.32)
    assert fix.lon == pytest.approx(10.234)
    assert fix.alt == 70.0
    assert fix.speed == pytest.approx(10 * 1852 / 3600)
    assert fix.track == 90.0
    assert fix.hdop == 0.9 and fix.sats == 8
    assert fix.time_of_day == 12 * 3600


def test_epochs_split_on_time_and_the_last_needs_flush():
    dec = NmeaDecoder()
    assert dec.feed(gga("120000.00")) == []
    assert dec.feed(rmc("120000.00")) == []
    [first] = dec.feed(gga("120001.00", lat="5219.3000"))
    assert first.time.second == 0
    assert dec.feed(rmc("120001.00", lat="5219.3000")) == []
    assert dec.pending
    [second] = dec.flush()
    assert second.time.second == 1 and second.lat == pytest.approx(52.3216667)
    assert not dec.pending and dec.flush() == []


def test_a_partial_cycle_is_not_reported_like_gpsd():
    """After the first time change the decoder knows RMC ends a cycle (the last timed
    sentence before it). A cycle without it (a sub-second GGA of its own, the last cycle
    cut off) is counted in ``partial`` and not reported. Like gpsd, the partial cycle's
    last sentence (GGA) ends cycles from then on: a 10 Hz GGA stream is followed."""
    dec = NmeaDecoder()
    dec.feed(gga("120000.00"))
    dec.feed(rmc("120000.00"))
    [first] = dec.feed(gga("120000.10"))  # a sub-second epoch with GGA only
    assert first.time_of_day == 43200
    assert dec.feed(gga("120000.20")) == [] and dec.partial == 1  # 12:00:00.1 dropped
    [second] = dec.feed(gga("120000.30"))  # GGA ends cycles now
    assert second.time_of_day == pytest.approx(43200.2) and dec.partial == 1


def test_the_last_cycle_cut_off_is_not_reported():
    dec = NmeaDecoder()
    for s in ("00", "01"):
        dec.feed(gga(f"1200{s}.00"))
        dec.feed(rmc(f"1200{s}.00"))
    dec.feed(nmea("GPGSA,A,3,01,02,03,04,,,,,,,,,1.5,0.9,1.2"))
    [fix] = dec.feed(gga("120002.00"))  # RMC never comes for 12:00:02
    assert fix.time_of_day == 43201
    assert dec.flush() == [] and dec.partial == 1


def test_the_first_cycle_is_reported_like_gpsd():
    """Before any cycle is known every epoch counts (gpsd reports after each sentence)."""
    dec = NmeaDecoder()
    dec.feed(gga("120000.00"))
    [fix] = dec.flush()
    assert fix.mode == 3 and dec.partial == 0


def test_date_comes_from_zda_and_southern_western_hemispheres():
    [fix] = decode(
        nmea("GPZDA,235959.50,31,12,2025,00,00"),
        gga("235959.50", lat="3747.0873", ns="S", lon="12213.8639", ew="W"),
    )
    assert fix.time == datetime(2025, 12, 31, 23, 59, 59, 500000, tzinfo=UTC)
    assert fix.lat < 0 and fix.lon < 0


def test_date_rolls_to_the_next_day_when_the_time_of_day_wraps():
    fixes = decode(rmc("235959.00", day="311225"), gga("235959.00"), gga("000000.00"))
    assert [f.time for f in fixes] == [
        datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC),
    ]


def test_week_rollover_moves_old_dates_1024_weeks_on():
    [fix] = decode(rmc("030719.000", day="311214"))
    assert GPS_WEEK_ROLLOVER == timedelta(days=7168)
    assert fix.time == datetime(2034, 8, 16, 3, 7, 19, tzinfo=UTC)
    [fix] = decode(rmc("030719.000", day="010117"))  # 2017-01-01: not shifted
    assert fix.time.year == 2017


def test_gga_before_any_date_has_no_time_and_cannot_become_a_position():
    [fix] = decode(gga())
    assert fix.mode == 3 and fix.time is None and fix.time_of_day == 43200
    with pytest.raises(NoFixError):
        fix.to_position()


def test_every_talker_is_accepted():
    for talker in ("GP", "GN", "GL", "GA", "GB", "BD", "QZ", "GI"):
        [fix] = decode(gga(talker=talker), rmc(talker=talker))
        assert fix.mode == 3, talker


def test_gll_gns_and_vtg_contribute():
    [fix] = decode(
        nmea("GNGNS,101500.00,5219.2000,N,01014.0400,E,AAN,10,0.8,71.5,46.9,,"),
        nmea("GNVTG,45.0,T,,M,2.0,N,3.7,K,A"),
        nmea("GNGLL,5219.2000,N,01014.0400,E,101500.00,A,A"),
        nmea("GNZDA,101500.00,26,03,2026,,"),
    )
    assert fix.mode == 3 and fix.alt == 71.5 and fix.sats == 10 and fix.hdop == 0.8
    assert fix.track == 45.0 and fix.speed == pytest.approx(2 * 1852 / 3600)
    assert fix.time == datetime(2026, 3, 26, 10, 15, tzinfo=UTC)


def test_rmc_only_stream_gives_2d():
    fixes = decode(rmc("120000.00"), rmc("120001.00"))
    assert [f.mode for f in fixes] == [2, 2]
    assert all(f.alt is None for f in fixes)


# --- validity ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "lines",
    [
        [rmc(status="V")],
        [rmc(faa="N")],
        [gga(q="0"), rmc()],
        [gga(q="6", sats="00"), rmc()],
        [nmea("GPGLL,5219.2000,N,01014.0400,E,120000.00,V,N"), rmc()],
        [nmea("GNGNS,120000.00,5219.2000,N,01014.0400,E,NNN,00,,,,,"), rmc()],
        [gga(), gsa(mode="1"), rmc()],
    ],
    ids=["rmc-V", "faa-N", "gga-0", "gga-6-no-sats", "gll-V", "gns-N", "gsa-1"],
)
def test_no_fix_indications(lines):
    [fix] = decode(*lines)
    assert fix.mode == 1
    assert fix.lat is None and fix.lon is None and fix.alt is None and fix.speed is None
    with pytest.raises(NoFixError):
        fix.to_position()
    assert issubclass(NoFixError, VanboxError)


def test_estimated_fix_with_satellites_is_a_fix():
    [fix] = decode(gga(q="6", sats="04"), rmc())
    assert fix.mode == 3


def test_gga_time_that_stops_advancing_means_stuck():
    """A receiver that lost lock but repeats its last GGA/GSA/RMC with the same time."""
    cycle = [gga("120000.00"), gsa(), rmc("120000.00")]
    fixes = decode(*(cycle * 3))
    assert [f.mode for f in fixes] == [3, 1, 1]
    assert all(f.lat is None for f in fixes[1:])
    # and the receiver recovers when the time advances again
    fixes = decode(*(cycle * 2), gga("120001.00"), gsa(), rmc("120001.00"))
    assert [f.mode for f in fixes] == [3, 1, 3]


def test_mode_from_gsa_else_from_altitude():
    [fix] = decode(gga(), gsa(mode="2"), rmc())
    assert fix.mode == 2 and fix.alt is None
    [fix] = decode(gga(alt=""), rmc())
    assert fix.mode == 2
    [fix] = decode(gga(), rmc())
    assert fix.mode == 3


def test_never_a_fix_at_zero_zero():
    [fix] = decode(gga(lat="0000.0000", lon="00000.0000"), rmc(lat="0000.0000", lon="00000.0000"))
    assert fix.mode == 1 and fix.lat is None


def test_empty_time_fields_still_give_one_epoch_per_cycle():
    cycle = [nmea("GPGGA,,,,,,0,,,,M,,M,,"), nmea("GPGLL,,,,,,V,N"), gsa(mode="1", hdop="")]
    fixes = decode(*(cycle * 3))
    assert [f.mode for f in fixes] == [1, 1, 1]
    assert all(f.time is None for f in fixes)


# --- noise -------------------------------------------------------------------------


def test_bad_checksum_is_rejected_and_counted():
    good = gga()
    bad = good.replace("5219.2000", "5219.2001")
    dec = NmeaDecoder()
    assert dec.feed(bad) == [] and dec.flush() == []
    assert dec.bad == 1 and dec.sentences == 0
    dec.feed(good)
    assert dec.sentences == 1


def test_missing_checksum_is_rejected():
    dec = NmeaDecoder()
    dec.feed("$GPTXT,TELIT SW Version: SL869 v3.1.2.1 -STD -N96\r\n")
    dec.feed(gga().replace("*", "").rstrip()[:-2])
    assert dec.bad == 2 and dec.flush() == []


def test_nul_bytes_do_not_pass_even_though_they_keep_the_checksum():
    good = gga()
    # NUL xor-s as zero: the checksum still matches. Put it in a field the decoder does
    # not parse (the altitude unit), so only the character check can refuse it.
    sneaky = good.replace(",M,46.9,", ",M\x00,46.9,")
    assert sneaky != good
    dec = NmeaDecoder()
    dec.feed(sneaky.encode("latin-1"))
    assert dec.flush() == [] and dec.bad == 1
    dec.feed(good.encode("latin-1"))
    assert [f.mode for f in dec.flush()] == [3]


def test_run_together_and_truncated_sentences():
    line = gsa().strip() + gga()[:30] + rmc().strip() + "\r\n"
    dec = NmeaDecoder()
    fixes = dec.feed(line.encode()) + dec.flush()
    assert dec.bad == 1  # the truncated GGA
    assert [f.mode for f in fixes] == [3]  # GSA 3 + RMC A: 3D from GSA


def test_binary_garbage_and_comments():
    dec = NmeaDecoder()
    assert dec.feed(bytes(range(256))) == []
    assert dec.feed(b"\xff\xfe$\x00\x01*zz") == []
    assert list(decode_lines([b"# a comment $GPGGA,not,a,sentence*00\n"])) == []
    assert dec.flush() == []


def test_malformed_fields_with_a_good_checksum_are_refused():
    dec = NmeaDecoder()
    for body in (
        "GPGGA,126100.00,5219.2,N,01014.04,E,1,08,0.9,70.0,M,,M,,",  # minute 61
        "GPGGA,120000.00,5299.2,N,01014.04,E,1,08,0.9,70.0,M,,M,,",  # 99 arc-minutes
        "GPGGA,120000.00,5219.2,X,01014.04,E,1,08,0.9,70.0,M,,M,,",  # hemisphere
        "GPRMC,120000.00,A,5219.2,N,01014.04,E,1.0,2.0,321399,,,A",  # date
        "GPGGA,120000.00,5219.2,N",  # too short
        "GPRMC,120000.00,A,5219.2,N,18114.04,E,1.0,2.0,260326,,,A",  # lon > 180
        "GPGGA,120000.00,5219.2,N,01014.04,E,1,08,nan,70.0,M,,M,,",
    ):
        assert dec.feed(nmea(body)) == []
    assert dec.bad == 7 and dec.sentences == 0
    assert dec.flush() == []


def test_field_parsing_agrees_with_pynmea2_on_the_corpus():
    """Every position sentence vanbox accepts in the corpus gives pynmea2's lat/lon."""
    checked = 0
    for log in sorted(CORPUS.glob("*.log")):
        for raw in log.read_bytes().split(b"\n"):
            line = raw.decode("latin-1").strip()
            if not line.startswith("$") or line.count("$") != 1:
                continue
            dec = NmeaDecoder()
            fixes = dec.feed(line) + dec.flush()
            if dec.sentences != 1 or not fixes or fixes[0].mode < 2:
                continue
            msg = pynmea2.parse(line, check=True)
            assert fixes[0].lat == pytest.approx(msg.latitude, abs=1e-9), line
            assert fixes[0].lon == pytest.approx(msg.longitude, abs=1e-9), line
            checked += 1
    assert checked > 500


def test_read_file_skips_comments(tmp_path):
    p = tmp_path / "rec.log"
    p.write_text("# receiver: test\n" + gga() + rmc() + "# end\n")
    assert [f.mode for f in read_file(p)] == [3]


# --- Fix -> Position -----------------------------------------------------------------


def test_to_position_carries_every_field():
    [fix] = decode(gga(), gsa(), rmc())
    pos = fix.to_position()
    assert isinstance(pos, Position)
    assert (pos.time, pos.lat, pos.lon, pos.mode, pos.alt) == (
        fix.time, fix.lat, fix.lon, 3, 70.0,
    )  # fmt: skip
    assert (pos.speed, pos.track, pos.hdop, pos.sats, pos.suspect) == (
        fix.speed, 90.0, 0.9, 8, False,
    )  # fmt: skip


def test_to_json_uses_gpsd_names_and_leaves_unknowns_out():
    [fix] = decode(rmc())
    d = fix.to_json()
    assert d["class"] == "TPV" and d["mode"] == 2
    assert d["time"] == "2026-03-26T12:00:00.000Z"
    assert "alt" not in d and "sats" not in d and "suspect" not in d
    [nofix] = decode(rmc(status="V"))
    assert set(nofix.to_json()) == {"class", "mode"}


# --- filter --------------------------------------------------------------------------


def _fix(sec: float, lat: float, lon: float = 10.2, hdop: float | None = 1.0) -> Fix:
    t = datetime(2026, 3, 26, 12, 0, tzinfo=UTC) + timedelta(seconds=sec)
    return Fix(time=t, mode=3, lat=lat, lon=lon, hdop=hdop)


def test_jump_filter_flags_a_fix_implying_more_than_max_speed():
    flt = FixFilter(max_speed_kmh=200)
    assert not flt.check(_fix(0, 52.3200)).suspect
    assert not flt.check(_fix(1, 52.3204)).suspect  # ~45 m in 1 s = 160 km/h
    jump = flt.check(_fix(2, 52.4200))  # 11 km in 1 s
    assert jump.suspect and jump.mode == 3 and jump.lat == 52.42  # kept, flagged
    assert not flt.check(_fix(3, 52.3205)).suspect  # back on track


def test_jump_filter_accepts_a_new_place_after_consistent_fixes():
    flt = FixFilter(max_speed_kmh=200, reanchor_after=3)
    flt.check(_fix(0, 52.0))
    flags = [flt.check(_fix(i, 53.0)).suspect for i in range(1, 5)]
    assert flags == [True, True, False, False]


def test_hdop_limit_flags_suspect():
    flt = FixFilter(max_hdop=5.0)
    assert flt.check(_fix(0, 52.3, hdop=5.1)).suspect
    assert not flt.check(_fix(1, 52.3, hdop=4.9)).suspect
    nofix = Fix(time=None, mode=1, hdop=50.0)
    assert flt.check(nofix) is nofix


def test_staleness_and_config():
    flt = FixFilter.from_config(default_config().gps)
    assert flt.max_speed_ms == pytest.approx(200 / 3.6)
    assert flt.max_hdop == 20.0 and flt.stale_after_s == 10.0
    assert not flt.is_stale(9.9)
    assert flt.is_stale(10.1)
    assert flt.is_stale(None)


def test_sixty_minutes_from_a_rounding_receiver_is_the_next_degree():
    [fix] = decode(gga(lat="5260.0000"), rmc(lat="5260.0000"))
    assert fix.mode == 3 and fix.lat == 53.0
