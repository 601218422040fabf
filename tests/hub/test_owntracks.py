"""The hub's OwnTracks view (hub/owntracks.py): payloads checked against the field rules
of the OwnTracks JSON format, table-driven; every stored position once and in time order
through a real broker, the backlog included; a card; transitions with event and desc;
the public variant under the privacy rules; the hub never counts these as malformed.

Field rules (https://owntracks.org/booklet/tech/json/):

- location: ``_type`` "location"; ``lat``, ``lon`` numbers (degrees); ``tst`` integer
  UNIX epoch seconds; ``acc``, ``alt`` integer metres; ``vel`` integer km/h; ``cog``
  integer degrees (0..359); ``tid`` a short string (the two-letter tracker id);
- card: ``_type`` "card"; ``name`` a string; ``tid`` optional;
- transition: ``_type`` "transition"; ``wtst`` integer seconds (the waypoint's
  creation, its id); ``tst`` integer seconds; ``lat``, ``lon``; ``acc`` integer;
  ``event`` "enter" or "leave"; ``t`` "c" (circular region) or "b" (beacon); ``desc``
  the region's name (the Recorder crashes on a transition without it: issue 15).
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from hub.ingest import Hub
from hub.owntracks import (
    OwnTracksView,
    StoredPosition,
    Visit,
    card,
    location,
    tid_of,
    transition,
)
from telemetry import registry, topics
from telemetry.config import ConfigError, default_config, load_config
from telemetry.events import Position, StopVisit
from telemetry.store import Store


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def is_seconds(v) -> bool:
    return is_int(v) and 946_684_800 <= v < 4_102_444_800  # 2000..2100, not milliseconds


RULES = {
    "location": {
        "lat": lambda v: is_num(v) and -90 <= v <= 90,
        "lon": lambda v: is_num(v) and -180 <= v <= 180,
        "tst": is_seconds,
        "tid": lambda v: isinstance(v, str) and 1 <= len(v) <= 2,
        "acc?": lambda v: is_int(v) and v >= 0,
        "alt?": is_int,
        "vel?": lambda v: is_int(v) and v >= 0,
        "cog?": lambda v: is_int(v) and 0 <= v <= 359,
    },
    "card": {
        "name": lambda v: isinstance(v, str) and v != "",
        "tid?": lambda v: isinstance(v, str),
    },
    "transition": {
        "wtst": is_seconds,
        "tst": is_seconds,
        "lat": lambda v: is_num(v) and -90 <= v <= 90,
        "lon": lambda v: is_num(v) and -180 <= v <= 180,
        "acc": lambda v: is_int(v) and v >= 0,
        "event": lambda v: v in ("enter", "leave"),
        "t": lambda v: v in ("c", "b"),
        "desc": lambda v: isinstance(v, str) and v != "",
        "tid?": lambda v: isinstance(v, str) and 1 <= len(v) <= 2,
    },
}


def violations(msg: dict) -> list[str]:
    rules = RULES.get(msg.get("_type"))
    if rules is None:
        return [f"_type {msg.get('_type')!r}"]
    bad = []
    for key, ok in rules.items():
        name = key.rstrip("?")
        if name not in msg:
            if not key.endswith("?"):
                bad.append(f"{name} missing")
        elif not ok(msg[name]):
            bad.append(f"{name} = {msg[name]!r}")
    return bad


T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
E0 = T0.timestamp()
FULL = StoredPosition(1, "van-a", E0 + 0.75, 52.3215, 10.2335, 81.4, 12.5, 359.7, 1.4)
BARE = StoredPosition(2, "van-a", E0, 52.3215, 10.2335, None, None, None, None)
VISIT = Visit("v1", "van-a", E0, E0 + 3600, "Peine, Marktplatz", 52.3215, 10.2335)


@pytest.mark.parametrize(
    ("msg", "expect"),
    [
        (location(FULL, "JR"), []),
        (location(BARE, tid_of("jungregio-1")), []),
        (card("JUNGregio-Mobil", "JR"), []),
        (transition(VISIT, "enter", "JR"), []),
        (transition(VISIT, "leave", "JR"), []),
        (transition(Visit("v2", "van-a", E0, None, "", 52.3, 10.2), "enter", "JR"), []),
        # the checker bites: each broken field is found
        ({**location(FULL, "JR"), "tst": int(E0 * 1000)}, ["tst"]),  # milliseconds
        ({**location(FULL, "JR"), "tst": E0 + 0.5}, ["tst"]),  # not an integer
        ({**location(FULL, "JR"), "vel": 45.0}, ["vel"]),
        ({**location(FULL, "JR"), "cog": 360}, ["cog"]),
        ({**location(FULL, "JR"), "tid": "JRX"}, ["tid"]),
        ({k: v for k, v in location(FULL, "JR").items() if k != "lat"}, ["lat"]),
        ({k: v for k, v in transition(VISIT, "enter", "JR").items() if k != "desc"}, ["desc"]),
        ({**transition(VISIT, "enter", "JR"), "event": "arrive"}, ["event"]),
        ({**card("x", "JR"), "name": ""}, ["name"]),
    ],
)
def test_payloads_follow_the_owntracks_field_rules(msg, expect):
    assert [v.split()[0] for v in violations(msg)] == expect


def test_the_transition_values():
    enter, leave = transition(VISIT, "enter", "JR"), transition(VISIT, "leave", "JR")
    assert (enter["tst"], enter["wtst"], enter["desc"]) == (int(E0), int(E0), "Peine, Marktplatz")
    assert (leave["tst"], leave["wtst"]) == (int(E0) + 3600, int(E0))
    with pytest.raises(ValueError):
        transition(Visit("v2", "van-a", E0, None, "x", 52.3, 10.2), "leave", "JR")


@settings(max_examples=300, deadline=None)
@given(
    ts=st.floats(946_684_800, 4_102_444_000),
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
    alt=st.none() | st.floats(-500, 9000),
    speed=st.none() | st.floats(0, 100),
    track=st.none() | st.floats(0, 360),
    hdop=st.none() | st.floats(0.01, 99),
)
def test_any_stored_position_gives_a_valid_location(ts, lat, lon, alt, speed, track, hdop):
    msg = location(StoredPosition(1, "van-a", ts, lat, lon, alt, speed, track, hdop), "JR")
    assert violations(msg) == []
    assert violations(json.loads(topics.dumps(msg))) == []


def test_config_keeps_the_owntracks_topic_out_of_the_hubs_subscription(tmp_path):
    assert default_config().hub["owntracks"]["topic"] == "owntracks/vanbox/{van}"
    for bad in ("vanbox/ot/{van}", "owntracks/+/{van}", "owntracks/vanbox", "owntracks/{van}/#"):
        p = tmp_path / "c.toml"
        p.write_text(f'[hub.owntracks]\ntopic = "{bad}"\n')
        with pytest.raises(ConfigError, match="hub.owntracks.topic"):
            load_config(p)
    p.write_text('[hub.owntracks]\nenabled = true\ntopic = "owntracks/fleet/{van}"\n')
    assert load_config(p).hub["owntracks"]["topic"] == "owntracks/fleet/{van}"


# --- through a real broker ----------------------------------------------------------------


class Listener:
    def __init__(self, port: int, topic: str) -> None:
        self.got: list[tuple[str, dict, bool]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"ot-{time.time()}")
        self.c.on_message = self._msg
        self.c.on_connect = lambda c, *a: c.subscribe(topic, 1)
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert self.subscribed.wait(10)

    def _msg(self, c, u, m) -> None:
        with self.lock:
            self.got.append((m.topic, json.loads(m.payload), bool(m.retain)))

    def of(self, kind: str) -> list[dict]:
        with self.lock:
            return [p for _, p, _ in self.got if p["_type"] == kind]

    def stop(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def wait_for(cond, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def fix(t: datetime, i: int) -> Position:
    return Position(time=t, lat=52.30 + i * 1e-4, lon=10.20, hdop=1.0, speed=5.0, track=90.0)


def start_hub(st_: Store, port: int, view_kw: dict | None = None) -> tuple[Hub, OwnTracksView]:
    from hub.registry import Registrar

    reg = Registrar(st_)
    box: dict = {}
    hub = Hub(st_, {"host": "127.0.0.1", "port": port}, client_id="hub-ot",
              on_batch=lambda vans: (reg(vans), box["view"](vans)))  # fmt: skip
    box["view"] = OwnTracksView(st_, hub.publish, **(view_kw or {}))
    hub.start()
    assert hub.wait_connected(10)
    return hub, box["view"]


@pytest.mark.mqtt
def test_each_stored_position_once_in_time_order_with_card_and_transitions(broker, tmp_path):
    st_ = Store(tmp_path / "hub.db")
    ot = Listener(broker.port, "owntracks/#")
    van = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="van-a")
    van.connect("127.0.0.1", broker.port)
    van.loop_start()
    hub, view = start_hub(st_, broker.port)
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        # a backlog of 50 fixes as one track batch (newest last), then two live ones
        backlog = [fix(now - timedelta(minutes=30) + timedelta(seconds=10 * i), i)
                   for i in range(50)]  # fmt: skip
        points = [topics.location_payload(p, "JR") for p in backlog]
        # the track arrives after the first live fix (as after an outage)
        live = [fix(now - timedelta(seconds=20), 100), fix(now - timedelta(seconds=10), 101)]
        van.publish("vanbox/van-a/location", topics.dumps(topics.location_payload(live[0], "JR")),
                    qos=1, retain=True).wait_for_publish(5)  # fmt: skip
        van.publish("vanbox/van-a/track", topics.dumps(topics.track_payload(points, "JR")),
                    qos=1).wait_for_publish(5)  # fmt: skip
        van.publish(
            "vanbox/van-a/track", topics.dumps(topics.track_payload(points, "JR")), qos=1
        ).wait_for_publish(5)  # the same batch again (resent): no repeats
        visit = StopVisit(arrived=now - timedelta(minutes=5), name="Peine, Marktplatz",
                          municipality="Peine", lat=52.3215, lon=10.2335)  # fmt: skip
        van.publish("vanbox/van-a/stop", topics.dumps(topics.stop_payload(visit)),
                    qos=1).wait_for_publish(5)  # fmt: skip
        van.publish("vanbox/van-a/location", topics.dumps(topics.location_payload(live[1], "JR")),
                    qos=1, retain=True).wait_for_publish(5)  # fmt: skip
        wait_for(lambda: len(ot.of("location")) >= 52 and ot.of("transition"), "the view")
        left = StopVisit(arrived=visit.arrived, name=visit.name, municipality="Peine",
                         lat=visit.lat, lon=visit.lon, left=now, id=visit.id)  # fmt: skip
        van.publish("vanbox/van-a/stop", topics.dumps(topics.stop_payload(left)),
                    qos=1).wait_for_publish(5)  # fmt: skip
        wait_for(lambda: len(ot.of("transition")) >= 2, "the leave transition")
        time.sleep(0.3)
        locs = ot.of("location")
        tsts = [m["tst"] for m in locs]
        expected = sorted(int(p.time.timestamp()) for p in backlog + live)
        assert sorted(tsts) == expected  # each once: 52, no repeats
        # in time order within each round: the live fix came first, then the rest in order
        assert tsts[1:] == sorted(tsts[1:])
        assert all(violations(m) == [] for m in locs)
        topics_seen = {t for t, _, _ in ot.got}
        assert topics_seen == {"owntracks/vanbox/van-a", "owntracks/vanbox/van-a/info",
                               "owntracks/vanbox/van-a/event"}  # fmt: skip
        cards = ot.of("card")
        assert cards and cards[0]["name"] == "van-a" and violations(cards[0]) == []
        trans = ot.of("transition")
        assert [(m["event"], m["desc"]) for m in trans] == [
            ("enter", "Peine, Marktplatz"),
            ("leave", "Peine, Marktplatz"),
        ]
        assert all(violations(m) == [] for m in trans)
        assert hub.stats.malformed == 0
        # a restarted hub sends nothing again (its watermark is in the store)
        hub.stop()
        n = len(ot.got)
        hub, view = start_hub(st_, broker.port)
        van.publish("vanbox/van-a/status", "online", qos=1).wait_for_publish(5)
        wait_for(lambda: hub.stats.batches >= 1, "a batch after the restart")
        time.sleep(0.3)
        assert [p for _, p, _ in ot.got[n:] if p["_type"] != "card"] == []
    finally:
        hub.stop()
        van.loop_stop()
        van.disconnect()
        ot.stop()
        st_.close()


def test_a_new_card_when_staff_rename_the_van(tmp_path):
    st_ = Store(tmp_path / "hub.db")
    sent: list[tuple[str, dict, bool]] = []

    def publish(topic, payload, *, retain=False):
        sent.append((topic, json.loads(payload), retain))
        return True

    try:
        st_.record(Position(time=T0, lat=52.3, lon=10.2, van="van-a", hdop=1.0))
        registry.register(st_, ["van-a"])
        view = OwnTracksView(st_, publish)
        view({"van-a"})
        assert [(t, p["_type"], r) for t, p, r in sent] == [
            ("owntracks/vanbox/van-a/info", "card", True),
            ("owntracks/vanbox/van-a", "location", False),
        ]
        registry.rename(st_, "van-a", "JUNGregio-Mobil")
        registry.set_tid(st_, "van-a", "JM")
        st_.record(Position(time=T0 + timedelta(seconds=5), lat=52.3, lon=10.2, van="van-a"))
        view({"van-a"})
        assert sent[2][1] == {"_type": "card", "name": "JUNGregio-Mobil", "tid": "JM"}
        assert sent[3][1]["tid"] == "JM"
        # disconnected: nothing is lost, it goes out with the next round
        down = OwnTracksView(st_, lambda *a, **k: False)
        st_.record(Position(time=T0 + timedelta(seconds=9), lat=52.3, lon=10.2, van="van-a"))
        down({"van-a"})
        view({"van-a"})
        assert [p["tst"] for _, p, _ in sent if p["_type"] == "location"] == [
            int(E0),
            int(E0) + 5,
            int(E0) + 9,
        ]
    finally:
        st_.close()


def test_the_public_topic_shows_only_what_the_public_map_shows(tmp_path):
    """Public: only published vans, only at a public stop during its hours (the default
    tour: Peine, Marktplatz, Mondays 10:00-13:00), never history, never elsewhere."""
    cfg = default_config()
    stop = cfg.tour[0]
    VAN = cfg.van["id"]  # the config's tour is this van's plan  # noqa: N806
    st_ = Store(tmp_path / "hub.db")
    sent: list[tuple[str, dict]] = []

    def publish(topic, payload, *, retain=False):
        assert retain  # the public topic holds the current state only
        sent.append((topic, json.loads(payload) if payload else ""))
        return True

    monday_11 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 11:00 in Berlin, a Monday
    clock = {"now": monday_11.timestamp()}
    try:
        view = OwnTracksView(st_, publish, public=True, config=cfg, now=lambda: clock["now"])
        # a home visit earlier that morning, then the stop
        st_.record(Position(time=monday_11 - timedelta(hours=2), lat=52.25, lon=10.1,
                            van=VAN, hdop=1.0))  # fmt: skip
        st_.record(Position(time=monday_11 - timedelta(seconds=30), lat=stop.lat, lon=stop.lon,
                            van=VAN, hdop=1.0))  # fmt: skip
        registry.register(st_, [VAN])
        view({VAN})
        assert sent == [("owntracks/vanbox/jungregio-1", "")]  # not public: cleared once
        view({VAN})
        assert len(sent) == 1  # and only once
        sent.clear()
        registry.rename(st_, VAN, "JUNGregio-Mobil")
        registry.publish(st_, VAN)
        view({VAN})
        locs = [p for _, p in sent if p["_type"] == "location"]
        assert len(locs) == 1  # no history: only where it stands now
        assert (locs[0]["lat"], locs[0]["lon"]) == (round(stop.lat, 4), round(stop.lon, 4))
        assert not [p for _, p in sent if p["_type"] == "transition"]
        # after hours at the same place: nothing
        sent.clear()
        clock["now"] = (monday_11 + timedelta(hours=4)).timestamp()
        st_.record(Position(time=monday_11 + timedelta(hours=4) - timedelta(seconds=5),
                            lat=stop.lat, lon=stop.lon, van=VAN, hdop=1.0))  # fmt: skip
        view({VAN})
        assert sent == [("owntracks/vanbox/jungregio-1", "")]  # the retained one is cleared
    finally:
        st_.close()


# --- docs/interop.md: the copy-paste configuration ------------------------------------

DOCS = __import__("pathlib").Path(__file__).resolve().parents[2] / "docs" / "interop.md"
# ot-recorder's long options (recorder.c, getopt_long): the topics are positional.
RECORDER_OPTIONS = {"--help", "--skipdemo", "--norevgeo", "--useretained", "--clientid",
                    "--pubprefix", "--qos", "--host", "--port", "--storage", "--logfacility",
                    "--precision", "--quiet", "--initialize", "--label", "--http-host",
                    "--http-port", "--doc-root", "--psk", "--identity"}  # fmt: skip
TAKES_VALUE = RECORDER_OPTIONS - {"--help", "--skipdemo", "--norevgeo", "--useretained",
                                  "--quiet", "--initialize"}  # fmt: skip


def doc_block(name: str) -> str:
    import re

    m = re.search(rf"<!-- test: {name} -->\n```\w*\n(.*?)```", DOCS.read_text(), re.S)
    assert m, f"docs/interop.md: no block {name}"
    return m.group(1)


def test_the_docs_owntracks_config_loads(tmp_path):
    p = tmp_path / "hub.toml"
    p.write_text(doc_block("hub-owntracks"))
    ot = load_config(p).hub["owntracks"]
    assert ot["enabled"] and not ot["public"]
    assert ot["topic"] == default_config().hub["owntracks"]["topic"]


def test_the_docs_recorder_command_runs_and_reads_the_views_topics():
    import shlex

    from paho.mqtt.client import topic_matches_sub

    words = shlex.split(doc_block("ot-recorder").replace("\\\n", " "))
    env = [w for w in words if "=" in w and w.split("=")[0].startswith("OTR_")]
    assert {w.split("=")[0] for w in env} == {"OTR_USER", "OTR_PASS", "OTR_CAFILE"}
    args = words[len(env) :]
    assert args[0] == "ot-recorder"
    topics_, i = [], 1
    while i < len(args):
        a = args[i]
        if a.startswith("--"):
            assert a in RECORDER_OPTIONS, f"ot-recorder has no option {a}"
            i += 2 if a in TAKES_VALUE else 1
        else:
            topics_.append(a)
            i += 1
    assert "--useretained" in args and "--http-host" in args and "--topics" not in args
    view = OwnTracksView(None, None)  # type: ignore[arg-type]
    for t in (view.topic_of("van-a"), view.topic_of("van-a") + "/info",
              view.topic_of("van-a") + "/event"):  # fmt: skip
        assert any(topic_matches_sub(s, t) for s in topics_), t


def test_a_long_history_goes_out_a_round_per_batch_each_once(tmp_path, monkeypatch):
    import hub.owntracks as mod

    monkeypatch.setattr(mod, "BATCH", 4)
    st_ = Store(tmp_path / "hub.db")
    sent: list[int] = []

    def publish(topic, payload, *, retain=False):
        msg = json.loads(payload)
        if msg["_type"] == "location":
            sent.append(msg["tst"])
        return True

    try:
        for s in reversed(range(10)):  # stored newest first
            st_.record(Position(time=T0 + timedelta(seconds=s), lat=52.3, lon=10.2, van="van-a"))
        view = OwnTracksView(st_, publish)
        view({"van-a"})
        assert len(sent) == 4  # one round: 4
        view({"van-a"})
        view({"van-a"})
        view({"van-a"})
        assert sorted(sent) == [int(E0) + s for s in range(10)]  # all, each once
        assert sent[:4] == sorted(sent[:4])  # each round in time order
    finally:
        st_.close()
