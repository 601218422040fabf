"""Whatever the box accepts at its GPS boundary and stores, the hub's decoder takes: a
fix is never refused whole on the hub (a refused fix would leave a gap that no resend
closes). The box's NMEA bounds are wider for some optional fields (altitude, speed); the
encoder leaves such a field out instead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import nmea_fields as fields
from telemetry import topics
from telemetry.events import Position

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
KNOTS_TO_KMH = 1.852


def opt(s):
    return st.none() | s


@settings(max_examples=400, deadline=None)
@given(
    lat=st.floats(-90, 90).filter(lambda v: abs(v) > 1e-6),
    lon=st.floats(-180, 180),
    mode=st.sampled_from([2, 3]),
    alt=opt(st.floats(fields.ALT_MIN_M, fields.ALT_MAX_M)),
    knots=opt(st.floats(0, fields.SPEED_MAX_KNOTS)),
    track=opt(st.floats(0, 360, exclude_max=True)),
    hdop=opt(st.floats(0, fields.HDOP_MAX)),
    sats=opt(st.integers(0, fields.SATS_MAX)),
    ago=st.floats(0, 86_400 * 30),
)
def test_every_fix_the_box_takes_decodes_on_the_hub(lat, lon, mode, alt, knots, track, hdop,
                                                     sats, ago):  # fmt: skip
    p = Position(
        time=NOW - timedelta(seconds=ago), lat=lat, lon=lon, mode=mode, alt=alt,
        speed=None if knots is None else knots * KNOTS_TO_KMH / 3.6, track=track, hdop=hdop,
        sats=sats,
    )  # fmt: skip
    payload = topics.dumps(topics.location_payload(p, "JR"))
    msg = topics.decode("vanbox/jr-1/location", payload.encode(), now=NOW.timestamp())
    (got,) = msg.events
    assert got.id == p.id and abs(got.lat - lat) < 1e-5 and abs(got.lon - lon) < 1e-5
    # an optional field is either carried (within a rounding) or left out, never refused
    if got.alt is not None:
        assert abs(got.alt - alt) <= 0.5
    if alt is not None and topics.ALT_MIN_M <= alt <= topics.ALT_MAX_M - 0.5:
        assert got.alt is not None


def test_the_bounds_just_inside_and_outside():
    def enc(**kw) -> dict:
        p = Position(time=NOW, lat=52.3, lon=10.2, **kw)
        return topics.location_payload(p, "JR")

    assert enc(alt=20_000.0)["alt"] == 20_000 and "alt" not in enc(alt=20_000.6)
    assert enc(alt=-1000.0)["alt"] == -1000 and "alt" not in enc(alt=-1000.6)
    assert enc(speed=1000 / 3.6)["vel"] == 1000 and "vel" not in enc(speed=1001 / 3.6)
    assert enc(hdop=99.9)["hdop"] == 99.9 and "hdop" not in enc(hdop=99.99)
    assert enc(sats=99)["sats"] == 99 and "sats" not in enc(sats=100)


def test_a_full_track_batch_decodes():
    """The largest batch the config allows is the largest the hub takes."""
    from telemetry.config import default_config
    from telemetry.errors import ConfigError

    default_config({"publish": {"track_batch": topics.MAX_TRACK_POINTS}})
    try:
        default_config({"publish": {"track_batch": topics.MAX_TRACK_POINTS + 1}})
    except ConfigError:
        pass
    else:
        raise AssertionError("track_batch above what the hub takes was accepted")
    pts = [
        topics.location_payload(Position(time=NOW - timedelta(seconds=i), lat=52.3, lon=10.2), "JR")
        for i in range(topics.MAX_TRACK_POINTS)
    ]
    body = topics.dumps(topics.track_payload(pts, "JR"))
    msg = topics.decode("vanbox/jr-1/track", body.encode(), now=NOW.timestamp())
    assert len(msg.events) == topics.MAX_TRACK_POINTS
