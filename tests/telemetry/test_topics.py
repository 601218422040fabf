"""Topics and payloads: OwnTracks-valid locations, round trips, malformed input refused."""

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telemetry import categories, topics
from telemetry.errors import PayloadError
from telemetry.events import CheckIn, Footfall, Position, StopVisit
from telemetry.topics import UUID_RE

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


U = "0190f2a4-5b6c-7d8e-9f00-112233445566"  # a canonical UUID
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("topic", "payload", "why"),
    [
        ("vanbox/v/location", b"\xff\xfe", "not UTF-8"),
        ("vanbox/v/location", b"{", "not JSON"),
        ("vanbox/v/location", b"[]", "JSON object"),
        ("vanbox/v/location", f'{{"id":"{U}","tst":1.8e9,"lat":0,"lon":0}}'.encode(),
         "no valid position"),
        ("vanbox/v/location", f'{{"id":"{U}","tst":1.7e9,"lat":"52","lon":10}}'.encode(),
         "must be a number"),
        ("vanbox/v/footfall", f'{{"id":"{U}","tst":1.7e9,"kind":"dance"}}'.encode(),
         "'kind' = 'dance' is not one of"),
        ("vanbox/v/checkin", b'{"id":"x","tst":1,"age_group":"15-17","topics":"job"}', "list"),
        ("vanbox/v/stop", b'{"id":"x","name":"a"}', "missing"),
        ("other/v/stop", b"{}", "not a vanbox topic"),
        ("vanbox/v/weather", b"{}", "unknown topic kind"),
    ],
)  # fmt: skip
def test_malformed_payloads_raise_payload_error(topic, payload, why):
    with pytest.raises(PayloadError, match=why):
        topics.decode(topic, payload, now=NOW)


# --- the boundary: every bound just inside and just outside -------------------------------

T0 = NOW - 3600


def good(kind: str) -> dict:
    """A valid payload of each event kind (as the box sends it)."""
    return {
        "location": {"_type": "location", "id": U, "tid": "JR", "tst": T0, "lat": 52.32,
                     "lon": 10.23, "mode": 3, "acc": 5, "hdop": 1.0, "alt": 70, "vel": 30,
                     "cog": 90, "sats": 9},
        "footfall": {"id": U, "tst": T0, "kind": "in", "sensor": "beam-pair", "occupancy": 2,
                     "today": {"in": 3, "out": 1, "pass": 0, "occupancy": 2}},
        "checkin": {"id": U, "tst": T0, "age_group": "18-20", "topics": ["job", "money"],
                    "first_visit": True, "heard_from": "school", "lang": "uk"},
        "stop": {"id": U, "name": "Markt", "municipality": "Peine", "lat": 52.32, "lon": 10.23,
                 "planned": True, "arrived": T0, "left": T0 + 60},
    }[kind]  # fmt: skip


def decode(kind: str, d: dict | list | str) -> topics.Message:
    body = d if isinstance(d, str) else json.dumps(d)
    return topics.decode(f"vanbox/van-1/{kind}", body.encode(), now=NOW)


def with_(kind: str, **changes) -> dict:
    d = good(kind)
    for k, v in changes.items():
        if v is ...:
            del d[k]
        else:
            d[k] = v
    return d


@pytest.mark.parametrize("kind", ["location", "footfall", "checkin", "stop"])
def test_good_payloads_pass(kind):
    (ev,) = decode(kind, good(kind)).events
    assert ev.van == "van-1" and UUID_RE.match(ev.id)
    assert ev.id == U or kind == "checkin"  # a check-in's id may be mapped to carry no time


def test_the_hub_refuses_events_from_more_than_ten_minutes_ahead():
    """A van's clock may run a little ahead (GPS vs NTP), not by hours (issue 14)."""
    assert topics.FUTURE_S == 600.0


# (kind, field, a value just inside, a value just outside)
BOUNDS = [
    ("location", "tst", topics.TIME_MIN, topics.TIME_MIN - 1),
    ("location", "tst", NOW + topics.FUTURE_S, NOW + topics.FUTURE_S + 1),
    ("location", "lat", 90, 90.000001),
    ("location", "lat", -90, -90.5),
    ("location", "lon", 180, 180.1),
    ("location", "lon", -180, -180.1),
    ("location", "sats", 99, 100),
    ("location", "sats", 0, -1),
    ("location", "hdop", 99.9, 100),
    ("location", "hdop", 0, -0.1),
    ("location", "alt", 20_000, 20_001),
    ("location", "alt", -1000, -1001),
    ("location", "vel", 1000, 1000.5),
    ("location", "vel", 0, -1),
    ("location", "cog", 360, 360.5),
    ("location", "cog", 0, -1),
    ("location", "mode", 2, 1),
    ("location", "mode", 3, 4),
    ("footfall", "occupancy", 10_000, 10_001),
    ("footfall", "occupancy", 0, -1),
    ("footfall", "tst", NOW + topics.FUTURE_S, NOW + topics.FUTURE_S + 1),
    ("checkin", "tst", topics.TIME_MIN, topics.TIME_MIN - 1),
    ("stop", "arrived", topics.TIME_MIN, topics.TIME_MIN - 1),
    ("stop", "left", NOW + topics.FUTURE_S, NOW + topics.FUTURE_S + 1),
    ("stop", "name", "M" * topics.MAX_TEXT, "M" * (topics.MAX_TEXT + 1)),
    ("stop", "municipality", "P", ""),
]


@pytest.mark.parametrize(("kind", "key", "inside", "outside"), BOUNDS)
def test_bounds_just_inside_pass_and_just_outside_fail(kind, key, inside, outside):
    assert decode(kind, with_(kind, **{key: inside})).events
    with pytest.raises(PayloadError, match=repr(key) if key not in ("lat", "lon") else "posit"):
        decode(kind, with_(kind, **{key: outside}))


@pytest.mark.parametrize(
    ("kind", "changes", "why"),
    [
        # issue 12 point 1, one by one
        ("location", {"id": "p", "tst": 1e20}, "'tst'"),
        ("location", {"sats": 10**30}, "'sats'"),
        ("footfall", {"occupancy": 10**30}, "'occupancy'"),
        ("location", {"id": "\ud800"}, "surrogate"),
        ("location", {"tst": datetime(9999, 1, 1, tzinfo=UTC).timestamp()}, "'tst'"),
        # issue 12 point 7
        ("footfall", {"occupancy": -1}, "'occupancy'"),
        ("checkin", {"age_group": "I am 19 and my name is Tom"}, "'age_group'"),
        ("checkin", {"topics": ["job", "my landlord Mr X"]}, "'topics'"),
        ("checkin", {"topics": ["job", "job"]}, "'topics'"),
        ("checkin", {"heard_from": "radio"}, "'heard_from'"),
        ("checkin", {"lang": "xx"}, "'lang'"),
        ("checkin", {"first_visit": "yes"}, "'first_visit'"),
        ("location", {"tst": NOW + 10 * 365 * 86400}, "'tst'"),
        # ids, types, texts
        ("footfall", {"id": U.upper()}, "canonical"),
        ("footfall", {"id": "{" + U + "}"}, "canonical"),
        ("checkin", {"id": 12}, "must be a string"),
        ("footfall", {"sensor": "the back door"}, "'sensor'"),
        ("location", {"sats": 9.5}, "whole number"),
        ("location", {"sats": True}, "must be a number"),
        ("location", {"tst": ...}, "missing 'tst'"),
        ("stop", {"name": "Markt\x00"}, "control character"),
        ("stop", {"name": "Markt\u2028x"}, "control character"),
        ("stop", {"left": T0 - 1}, "before 'arrived'"),
        ("stop", {"name": "   "}, "'name'"),
        ("footfall", {"today": {"in": "x" * 300}}, "longer than"),
    ],
)
def test_hostile_values_are_refused(kind, changes, why):
    with pytest.raises(PayloadError, match=why):
        decode(kind, with_(kind, **changes))


@pytest.mark.parametrize(
    ("kind", "body", "why"),
    [
        ("track", "[" * 5000 + "]" * 5000, "nested deeper"),
        ("track", '{"a":' * 5000 + "1" + "}" * 5000, "nested deeper"),
        ("location", "[" * 4000 + "]" * 4000, "nested deeper"),
        ("tally", '{"a":' * 5000 + "1" + "}" * 5000, "nested deeper"),
        ("location", '{"id":"\\ud800","tst":1.7e9,"lat":52,"lon":10}', "surrogate"),
        ("location", '{"\\udfff":1}', "surrogate"),
        ("location", '{"tst":NaN}', "not JSON"),
        ("location", '{"tst":Infinity}', "not JSON"),
        ("location", '{"tst":1e400,"id":"' + U + '","lat":52,"lon":10}', "finite"),
        ("location", '{"sats":' + "9" * 5000 + "}", "not JSON"),
        ("location", '{"id":"a","id":"b"}', "not JSON"),
        ("footfall", '{"x":"' + "a" * 9000 + '"}', "larger than"),
        ("status", "online\x00", "status must be"),
        ("bridge", "2", "bridge state"),
    ],
)
def test_raw_payloads_are_refused(kind, body, why):
    with pytest.raises(PayloadError, match=why):
        decode(kind, body)


def test_depth_is_checked_before_parsing_and_brackets_in_strings_do_not_count():
    assert topics.json_depth('{"a":[{"b":"[[[[[[{{{{"}]}') == 3
    assert topics.json_depth('{"a":"\\"[[[["}') == 1
    d = with_("stop", name="Markt [[[[[[[[[[ {{{{{{{{")
    assert decode("stop", d).events[0].name == "Markt [[[[[[[[[[ {{{{{{{{"
    deep = {"id": U}
    for _ in range(topics.MAX_DEPTH - 1):
        deep = {"x": deep}
    with pytest.raises(PayloadError, match="missing"):  # depth 6: parsed, then checked
        decode("footfall", deep)
    with pytest.raises(PayloadError, match="nested deeper"):
        decode("footfall", {"x": deep})


def test_a_lone_surrogate_in_a_str_payload_is_refused():
    with pytest.raises(PayloadError, match="UTF-8"):
        topics.decode("vanbox/van-1/status", "online\ud800", now=NOW)


def test_van_ids_in_topics_are_checked():
    with pytest.raises(PayloadError, match="not a van id"):
        topics.decode("vanbox/Van A/status", b"online")
    with pytest.raises(PayloadError, match="not a van id"):
        topics.decode("vanbox/" + "a" * 41 + "/status", b"online")
    assert topics.decode("vanbox/" + "a" * 40 + "/status", b"online").van == "a" * 40


def test_a_track_batch_keeps_good_points_and_rejects_bad_ones():
    pts = [with_("location", id=f"0190f2a4-5b6c-7d8e-9f00-1122334455{i:02d}") for i in range(5)]
    pts[1]["tst"] = 1e20
    pts[3] = "not a point"
    msg = decode("track", {"tid": "JR", "points": pts})
    assert [e.id[-2:] for e in msg.events] == ["00", "02", "04"]
    assert len(msg.rejected) == 2
    assert "point 1" in msg.rejected[0].reason and "'tst'" in msg.rejected[0].reason
    assert "point 3" in msg.rejected[1].reason and msg.rejected[1].payload == '"not a point"'
    # the batch bound, just inside and just outside
    p = {k: v for k, v in good("location").items() if k != "_type"}
    assert len(decode("track", {"points": [p] * topics.MAX_TRACK_POINTS}).events) == 500
    with pytest.raises(PayloadError, match="more than 500"):
        decode("track", {"points": [p] * (topics.MAX_TRACK_POINTS + 1)})


def test_bridge_and_control_kinds():
    assert decode("bridge", "1").status == "online"
    assert decode("bridge", "0").status == "offline"
    assert decode("bridge", "0").kind == "bridge"
    msg = decode("plan", {"version": 3, "visits": [{"a": [1, 2]}]})
    assert msg.control == {"version": 3, "visits": [{"a": [1, 2]}]}
    with pytest.raises(PayloadError, match="JSON object"):
        decode("tally", "[1]")
    big = '{"x":"' + "a" * topics.MAX_CONTROL_PAYLOAD + '"}'
    with pytest.raises(PayloadError, match="larger than"):
        decode("ack", big)


def test_category_codes_are_the_kiosks():
    from kiosk import checkin, i18n
    from telemetry import categories

    assert tuple(checkin.AGE_GROUPS) == categories.AGE_GROUPS
    assert tuple(checkin.TOPICS) == categories.TOPICS
    assert tuple(checkin.HEARD_FROM) == categories.HEARD_FROM
    assert set(i18n.LANGUAGES) == set(categories.LANGUAGES)


# --- fuzzing: decode raises PayloadError or returns storable events, nothing else ------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e20, -1.0, 0, 10**30, 253402300799, 1e308, U, "\ud800", "online"])
    | st.text(max_size=30),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=20,
)


def mutated(kind: str):
    base = good(kind)
    keys = st.sampled_from(sorted(base) + ["points", "id", "tst"])
    return st.dictionaries(keys, json_values, max_size=6).map(lambda ch: {**base, **ch})


@pytest.mark.parametrize("kind", ["location", "footfall", "checkin", "stop", "track", "tally"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzzed_payloads_decode_or_raise_payload_error(kind, data):
    choice = data.draw(st.integers(0, 2))
    if choice == 0:
        body = json.dumps(data.draw(json_values), ensure_ascii=data.draw(st.booleans()))
    elif choice == 1:
        d = data.draw(mutated(kind if kind in ("location", "footfall", "checkin", "stop")
                              else "location"))  # fmt: skip
        body = json.dumps({"points": [d, d]} if kind == "track" else d)
    else:
        body = data.draw(st.binary(max_size=200))
    try:
        msg = topics.decode(f"vanbox/van-1/{kind}", body, now=NOW)
    except PayloadError:
        return
    for ev in msg.events:  # whatever passes is within the bounds
        assert topics.TIME_MIN <= ev.time.timestamp() <= NOW + topics.FUTURE_S
        assert UUID_RE.match(ev.id)
        if isinstance(ev, Position | StopVisit):
            assert -90 <= ev.lat <= 90 and -180 <= ev.lon <= 180 and (ev.lat, ev.lon) != (0, 0)
        if isinstance(ev, Position):
            assert ev.sats is None or 0 <= ev.sats <= 99
        if isinstance(ev, Footfall):
            assert 0 <= ev.occupancy <= 10_000 and ev.sensor in categories.SENSORS
        if isinstance(ev, CheckIn):
            assert ev.age_group in categories.AGE_GROUPS
            assert set(ev.topics) <= set(categories.TOPICS)
            assert ev.language in (None, *categories.LANGUAGES)
