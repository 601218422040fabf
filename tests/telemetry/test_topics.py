"""Topics and payloads: OwnTracks-valid locations, round trips, malformed input refused."""

import json
from datetime import UTC, datetime

import pytest

from telemetry import topics
from telemetry.errors import PayloadError
from telemetry.events import CheckIn, Footfall, Position, StopVisit

T = datetime(2026, 6, 1, 10, 0, 5, tzinfo=UTC)


def test_topic_names():
    assert topics.topic("vanbox", "van-1", "location") == "vanbox/van-1/location"
    assert topics.subscription("vanbox") == "vanbox/+/#"
    assert topics.parse_topic("a/b/van-1/footfall", "a/b") == ("van-1", "footfall")
    with pytest.raises(ValueError):
        topics.topic("vanbox", "v", "secret")


def test_location_is_an_owntracks_location():
    p = Position(time=T, lat=52.3215, lon=10.2335, alt=71.6, speed=10.0, track=359.7, hdop=0.9,
                 sats=9, mode=3)  # fmt: skip
    d = topics.location_payload(p, "JR")
    # OwnTracks: _type, lat, lon, tst are required; acc, alt, vel, cog are integers.
    assert d["_type"] == "location" and d["tid"] == "JR"
    assert d["tst"] == int(T.timestamp())
    assert (d["lat"], d["lon"]) == (52.3215, 10.2335)
    assert (d["acc"], d["alt"], d["vel"], d["cog"]) == (4, 72, 36, 0)
    assert all(isinstance(d[k], int) for k in ("tst", "acc", "alt", "vel", "cog"))
    assert d["id"] == p.id


def test_round_trips_keep_ids_and_values():
    p = Position(time=T, lat=52.3, lon=10.2, speed=5.0, van="v")
    f = Footfall(time=T, kind="out", sensor="beam-pair", occupancy=2, van="v")
    c = CheckIn(time=T, age_group="21-24", topics=("housing", "money"), first_visit=False,
                language="ar", van="v")  # fmt: skip
    s = StopVisit(arrived=T, name="Vechelde", municipality="Vechelde", lat=52.26, lon=10.36,
                  van="v")  # fmt: skip
    cases = [
        ("location", topics.location_payload(p, "JR")),
        ("footfall", topics.footfall_payload(f, {"in": 3, "out": 1, "pass": 0, "occupancy": 2})),
        ("checkin", topics.checkin_payload(c)),
        ("stop", topics.stop_payload(s)),
    ]
    for kind, payload in cases:
        msg = topics.decode(f"vanbox/v/{kind}", topics.dumps(payload).encode())
        (ev,) = msg.events
        assert msg.van == "v" and ev.van == "v"
    got = topics.decode("vanbox/v/footfall", topics.dumps(cases[1][1])).events[0]
    assert (got.id, got.kind, got.occupancy, got.time) == (f.id, "out", 2, T)
    got = topics.decode("vanbox/v/checkin", topics.dumps(cases[2][1])).events[0]
    assert (got.id, got.topics, got.first_visit, got.language) == (c.id, c.topics, False, "ar")
    assert got.time == T.replace(second=0)
    got = topics.decode("vanbox/v/location", topics.dumps(cases[0][1])).events[0]
    assert got.id == p.id and abs(got.speed - 5.0) < 0.2


def test_track_batch():
    pts = [topics.location_payload(Position(time=T, lat=52.3, lon=10.2 + i / 1000), "JR")
           for i in range(3)]  # fmt: skip
    body = topics.dumps(topics.track_payload(pts, "JR"))
    msg = topics.decode("vanbox/v/track", body)
    assert [e.id for e in msg.events] == [p["id"] for p in pts]
    assert "_type" not in json.loads(body)["points"][0]


def test_status():
    assert topics.decode("vanbox/v/status", b"offline").status == "offline"
    with pytest.raises(PayloadError):
        topics.decode("vanbox/v/status", b"maybe")


@pytest.mark.parametrize(
    ("topic", "payload", "why"),
    [
        ("vanbox/v/location", b"\xff\xfe", "not UTF-8"),
        ("vanbox/v/location", b"{", "not JSON"),
        ("vanbox/v/location", b"[]", "JSON object"),
        ("vanbox/v/location", b'{"id":"x","tst":1,"lat":0,"lon":0}', "no valid position"),
        ("vanbox/v/location", b'{"id":"x","tst":1,"lat":"52","lon":10}', "must be a number"),
        ("vanbox/v/footfall", b'{"id":"x","tst":1,"kind":"dance"}', "unknown footfall kind"),
        ("vanbox/v/checkin", b'{"id":"x","tst":1,"age_group":"15-17","topics":"job"}', "list"),
        ("vanbox/v/stop", b'{"id":"x","name":"a"}', "missing"),
        ("other/v/stop", b"{}", "not a vanbox topic"),
        ("vanbox/v/weather", b"{}", "unknown topic kind"),
    ],
)
def test_malformed_payloads_raise_payload_error(topic, payload, why):
    with pytest.raises(PayloadError, match=why):
        topics.decode(topic, payload)
