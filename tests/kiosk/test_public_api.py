"""The public API and page: exactly the public view, ETag polling, both modes, Leaflet
from the package, and nothing private (no check-ins, no history, no hidden places)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from kiosk import create_app
from telemetry import registry
from telemetry.config import default_config
from telemetry.events import CheckIn, Footfall, Position, StopVisit
from telemetry.store import Store

MARKT = (52.3215, 10.2335)
DEPOT = (52.3300, 10.2500)
MON_1115 = datetime(2026, 11, 23, 10, 15, tzinfo=UTC)  # Monday 11:15 in Peine


class Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def now(self) -> datetime:
        return self.t


def publish(st: Store, van: str, name: str) -> None:
    """Staff name and publish a van (the registry: only published vans are public)."""
    registry.register(st, [van])
    registry.rename(st, van, name)
    registry.publish(st, van)


def make_cfg(**over):
    return default_config(
        {
            "van": {"id": "van-a", "name": "JUNGregio-Mobil", "tid": "JR"},
            "privacy": {"hidden_zones": [{"name": "Depot", "lat": DEPOT[0], "lon": DEPOT[1],
                                          "radius_m": 400}]},
            "tour": {"stops": [
                {"name": "Markt", "municipality": "Peine", "lat": MARKT[0], "lon": MARKT[1],
                 "weekdays": ["mon"], "start": "10:00", "end": "13:00"},
                {"name": "Schule", "municipality": "Edemissen", "lat": 52.386, "lon": 10.261,
                 "weekdays": ["mon"], "start": "14:30", "end": "18:00"},
            ]},
            **over,
        }
    )  # fmt: skip


@pytest.fixture
def hub(tmp_path):
    st = Store(tmp_path / "hub.db")
    t = MON_1115
    secret = CheckIn(time=t, age_group="15-17", topics=("sexuality",), heard_from="school",
                     language="fa", van="van-a")  # fmt: skip
    track = [Position(time=t - timedelta(minutes=40 - k), lat=52.30 + 0.003 * k, lon=10.20,
                      van="van-a") for k in range(10)]  # fmt: skip
    st.ingest_many(
        track
        + [
            Position(time=t - timedelta(minutes=1), lat=MARKT[0], lon=MARKT[1], van="van-a"),
            Position(time=t - timedelta(minutes=2), lat=DEPOT[0], lon=DEPOT[1], van="van-b"),
            StopVisit(arrived=t - timedelta(minutes=30), name="Markt", municipality="Peine",
                      lat=MARKT[0], lon=MARKT[1], van="van-a"),
            secret,
            Footfall(time=t, kind="in", occupancy=4, van="van-a"),
        ]
    )  # fmt: skip
    with st.transaction() as conn:
        conn.executemany(
            "INSERT INTO van_status (van, status, last_seen) VALUES (?, ?, ?)",
            [("van-a", "online", (t - timedelta(minutes=1)).timestamp()),
             ("van-b", "online", (t - timedelta(minutes=2)).timestamp())],
        )  # fmt: skip
    publish(st, "van-a", "Bus Nord")
    publish(st, "van-b", "Bus Süd")
    app = create_app({"TESTING": True}, config=make_cfg(), store=st, mode="hub")
    app.extensions["vanbox_clock"] = Clock(MON_1115)
    yield app, st, secret
    st.close()


def test_api_shows_the_open_van_and_hides_the_one_in_the_depot(hub):
    app, _, _ = hub
    r = app.test_client().get("/api/public/vans")
    assert r.status_code == 200 and r.mimetype == "application/json"
    data = r.get_json()
    assert data["today"] == "2026-11-23"
    a, b = data["vans"]
    assert (a["van"], a["state"], a["stop"]["name"]) == ("van-a", "open", "Markt")
    assert a["position"] == {"lat": MARKT[0], "lon": MARKT[1], "coarse": False}
    assert a["open_since"] == "2026-11-23T10:45+01:00"  # arrived late
    # van-b has no plan for today: a parked van, whatever its box does.
    assert (b["van"], b["state"], b["closed"], b["position"]) == ("van-b", "closed", "none", None)
    assert b["status"] is None and b["last_seen"] is None
    # "last seen" next to "open now" would only look stale: only an offline van has it.
    assert a["last_seen"] is None
    assert [s["name"] for s in data["stops"]] == ["Markt", "Schule"]


def test_api_reveals_no_checkins_counts_or_history(hub):
    app, _, secret = hub
    body = app.test_client().get("/api/public/vans").get_data(as_text=True)
    page = app.test_client().get("/").get_data(as_text=True)
    for text in (body, page):
        for private in (secret.id, "sexuality", "15-17", "heard_from", "age_group", "occupancy",
                        "checkin", "footfall", "track", str(DEPOT[0]), "52.303"):  # fmt: skip
            assert private not in text, private
    # Exactly one position per van at most: no history.
    data = json.loads(body)
    assert sum(1 for v in data["vans"] if v["position"]) == 1


def test_nothing_outside_service_hours(hub):
    app, _, _ = hub
    app.extensions["vanbox_clock"] = Clock(MON_1115 + timedelta(hours=2, minutes=50))  # 14:05
    data = app.test_client().get("/api/public/vans").get_json()
    assert all(v["position"] is None and v["stop"] is None for v in data["vans"])
    # van-a is between its two stops (in service, position hidden); van-b has no plan.
    assert [v["state"] for v in data["vans"]] == ["away", "closed"]
    page = app.test_client().get("/").get_data(as_text=True)
    assert str(MARKT[1]) not in page.split('"stops"')[0]  # the stop list is public, the van not


def test_etag_polling(hub):
    app, st, _ = hub
    c = app.test_client()
    r = c.get("/api/public/vans")
    etag = r.headers["ETag"]
    assert r.headers["Cache-Control"] == "no-cache"
    r2 = c.get("/api/public/vans", headers={"If-None-Match": etag})
    assert r2.status_code == 304 and r2.data == b""
    # The page's way: the ETag as ?since=, answered in a few bytes while nothing changed.
    r2b = c.get(f"/api/public/vans?since={etag.strip(chr(34))}")
    assert r2b.status_code == 200 and r2b.get_json() == {"unchanged": True}
    assert r2b.headers["ETag"] == etag
    # The simulated clock's "now" goes with every answer: the page reckons "last seen"
    # from it, not from the wall-clock Date header.
    assert r2b.headers["X-Vanbox-Now"] == MON_1115.isoformat()
    assert c.get("/api/public/vans?since=stale").get_json()["vans"]
    # A new fix at the stop changes the answer (and so the ETag).
    st.ingest_many([Position(time=MON_1115, lat=MARKT[0] + 0.0005, lon=MARKT[1], van="van-a")])
    r3 = c.get("/api/public/vans", headers={"If-None-Match": etag})
    assert r3.status_code == 200 and r3.headers["ETag"] != etag
    assert c.get(f"/api/public/vans?since={etag.strip(chr(34))}").get_json()["vans"]
    assert r3.get_json()["vans"][0]["position"]["lat"] == round(MARKT[0] + 0.0005, 4)


def test_one_van_and_unknown_vans(hub):
    app, _, _ = hub
    c = app.test_client()
    data = c.get("/api/public/vans/van-b").get_json()
    assert [v["van"] for v in data["vans"]] == ["van-b"]
    assert c.get("/api/public/vans/nobody").status_code == 404
    assert c.get("/van/nobody").status_code == 404
    page = c.get("/van/van-a").get_data(as_text=True)
    assert "Markt" in page and 'data-van="van-b"' not in page


def test_page_offline_list_and_english(hub):
    app, st, _ = hub
    with st.transaction() as conn:
        conn.execute("UPDATE van_status SET status = 'offline' WHERE van = 'van-a'")
    c = app.test_client()
    page = c.get("/?view=list").get_data(as_text=True)
    assert '<body class="list-only no-js">' in page
    assert "Gerade keine Verbindung" in page and "Zuletzt gemeldet" in page
    assert "vor 1 Minute" in page and "Offline" not in page
    en = c.get("/?lang=en").get_data(as_text=True)
    assert "Last report" in en and "1 minute ago" in en and 'lang="en"' in en
    en2 = c.get("/", headers={"Accept-Language": "en-GB,en;q=0.8"}).get_data(as_text=True)
    assert "Where is the van?" in en2


def test_leaflet_comes_from_the_package_not_a_cdn(hub):
    import xstatic.pkg.leaflet as leaflet_pkg

    app, _, _ = hub
    c = app.test_client()
    page = c.get("/").get_data(as_text=True)
    assert "/public/leaflet/leaflet.js" in page and "/public/leaflet/leaflet.css" in page
    assert "unpkg" not in page and "cdn" not in page.lower()
    js = c.get("/public/leaflet/leaflet.js")
    with open(f"{leaflet_pkg.BASE_DIR}/leaflet.js", "rb") as f:
        assert js.data == f.read()
    assert c.get("/public/leaflet/../../__init__.py").status_code == 404
    assert c.get("/static/public/public.js").status_code == 200
    # The tile server is configurable, OpenStreetMap with attribution by default.
    assert "tile.openstreetmap.org" in page and "OpenStreetMap contributors" in page


def test_box_mode_map_shows_this_van_only(tmp_path):
    st = Store(tmp_path / "box.db", van="van-a")
    st.record(Position(time=MON_1115 - timedelta(minutes=1), lat=MARKT[0], lon=MARKT[1]))
    st.ingest_many([Position(time=MON_1115, lat=MARKT[0], lon=MARKT[1], van="other")])
    app = create_app({"TESTING": True}, config=make_cfg(), store=st, mode="box")
    app.extensions["vanbox_clock"] = Clock(MON_1115)
    c = app.test_client()
    data = c.get("/api/public/vans").get_json()
    assert [(v["van"], v["name"], v["state"]) for v in data["vans"]] == [
        ("van-a", "JUNGregio-Mobil", "open")
    ]
    assert c.get("/api/public/vans/other").status_code == 404
    assert "JUNGregio-Mobil" in c.get("/map").get_data(as_text=True)
    assert c.get("/van/van-a").status_code == 404  # the hub's routes are not on the box
    st.close()


def test_the_fast_poll_path_answers_exactly_like_the_app(tmp_path, monkeypatch):
    import kiosk.public as public

    st = Store(tmp_path / "hub.db")
    st.ingest_many([Position(time=datetime.now(UTC), lat=MARKT[0], lon=MARKT[1], van="van-a")])
    with st.transaction() as conn:
        conn.execute("INSERT INTO van_status (van, status) VALUES ('van-a', 'online')")
    publish(st, "van-a", "Bus Nord")
    app = create_app({"TESTING": True}, config=make_cfg(), store=st, mode="hub")
    monkeypatch.setattr(public, "FRESH_SECONDS", 3600.0)
    c = app.test_client()
    slow = c.get("/api/public/vans")  # through Flask: builds the snapshot
    etag = slow.headers["ETag"].strip('"')
    slow_since = c.get(f"/api/public/vans?since={etag}")
    fast = app.extensions[public.FAST_KEY]

    def no_flask(environ, start_response):
        raise AssertionError(f"went through Flask: {environ['PATH_INFO']}")

    fast.wsgi_app = no_flask
    for path, want in (("/api/public/vans", slow), (f"/api/public/vans?since={etag}", slow_since)):
        r = c.get(path)
        assert r.status_code == 200 and r.data == want.data
        assert dict(r.headers.items()) == dict(want.headers.items())
    r = c.get("/api/public/vans", headers={"If-None-Match": f'"{etag}"'})
    assert r.status_code == 304
    # Anything else is not the shortcut's business.
    with pytest.raises(AssertionError, match="went through Flask"):
        c.get("/api/public/vans/van-a")
    # An old snapshot is not used.
    monkeypatch.setattr(public, "FRESH_SECONDS", 0.0)
    with pytest.raises(AssertionError, match="went through Flask"):
        c.get("/api/public/vans")
    st.close()
