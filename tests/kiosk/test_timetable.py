"""The public side of the plans: each van's page and the all-vans page show that van's own
next visits (cancellations and delays in plain words), the weekly timetable, and only
published vans (a new van is not public, a retired one disappears)."""

from __future__ import annotations

import html
import json
import re
import urllib.parse
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as hst

from kiosk import create_app
from kiosk.public_text import LANGS, TEXT
from kiosk.timetable import Words
from telemetry import registry
from telemetry.config import default_config
from telemetry.plan import PlanException, PlanStop, change_plan, new_id
from telemetry.store import Store

MON_0900 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday 09:00 in Peine
MONDAY = date(2026, 11, 23)


class Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def now(self) -> datetime:
        return self.t


def cfg_for(van: str = "van-a"):
    return default_config(
        {
            "van": {"id": van, "name": "JUNGregio-Mobil", "tid": "JR"},
            "tour": {"stops": [
                {"name": "Markt", "municipality": "Peine", "lat": 52.3215, "lon": 10.2335,
                 "weekdays": ["mon", "wed"], "start": "10:00", "end": "13:00"},
                {"name": "Schule", "municipality": "Edemissen", "lat": 52.386, "lon": 10.261,
                 "weekdays": ["mon"], "start": "14:30", "end": "18:00"},
            ]},
        }
    )  # fmt: skip


SCHULE = PlanStop("schule", "Schule", "Edemissen", 52.386, 10.261, 150.0, (0,), time(14, 30),
                  time(18, 0))  # fmt: skip
MARKT = PlanStop("markt", "Markt", "Peine", 52.3215, 10.2335, 150.0, (0, 2), time(10, 0),
                 time(13, 0))  # fmt: skip
RATHAUS = PlanStop("rathaus", "Rathaus", "Wendeburg", 52.328, 10.396, 150.0, (0, 3),
                   time(9, 30), time(12, 0))  # fmt: skip
SPORTPLATZ = PlanStop("sportplatz", "Sportplatz", "Vechelde", 52.261, 10.366, 150.0, (0,),
                      time(15, 0), time(17, 30))  # fmt: skip


def publish(st: Store, van: str, name: str) -> None:
    registry.register(st, [van])
    registry.rename(st, van, name)
    registry.publish(st, van)


def set_stops(st: Store, van: str, *stops: PlanStop) -> None:
    for s in stops:
        change_plan(st, van, lambda p, s=s: p.with_stop(s, now=1.0))


def except_(st: Store, van: str, tour=(), **kw) -> PlanException:
    ex = PlanException(id=new_id(), **kw)
    change_plan(st, van, lambda p: p.with_exception(ex, now=2.0), fallback_tour=tour)
    return ex


@pytest.fixture
def hub(tmp_path):
    """Two published vans with different plans; the hub's own config describes neither."""
    st = Store(tmp_path / "hub.db")
    publish(st, "van-a", "Bus Nord")
    publish(st, "van-b", "Bus Süd")
    set_stops(st, "van-a", MARKT, SCHULE)
    set_stops(st, "van-b", RATHAUS, SPORTPLATZ)
    app = create_app({"TESTING": True}, config=cfg_for("hub-itself"), store=st, mode="hub")
    app.extensions["vanbox_clock"] = Clock(MON_0900)
    yield app, st
    st.close()


def names(view: dict) -> list[str]:
    return [n["name"] for n in view["next"]]


def text(fragment: str) -> str:
    """An HTML fragment's text, as read: no tags, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def items(page: str) -> list[tuple[str, str, str]]:
    """Each visit's line in a public page's lists (the live map's "next dates", the
    timetable's days): its status, what it says before its note (day, time, place), and
    the note."""
    out = []
    for status, li in re.findall(r'<li class="st-(\w+)[^"]*">(.*?)</li>', page, re.S):
        head, _, note = li.partition('<span class="note">')
        out.append((status, text(head), text(note)))
    return out


def lines(page: str) -> list[tuple[str, str]]:
    return [(head, note) for _, head, note in items(page)]


def test_each_van_shows_its_own_next_visits(hub):
    app, _ = hub
    c = app.test_client()
    data = c.get("/api/public/vans").get_json()
    by = {v["van"]: v for v in data["vans"]}
    assert [v["name"] for v in data["vans"]] == ["Bus Nord", "Bus Süd"]
    assert names(by["van-a"]) == ["Markt", "Schule", "Markt"]
    assert names(by["van-b"]) == ["Rathaus", "Sportplatz", "Rathaus"]
    assert {s["name"] for s in data["stops"]} == {"Markt", "Schule", "Rathaus", "Sportplatz"}
    page_a = c.get("/van/van-a").get_data(as_text=True)
    page_b = c.get("/van/van-b").get_data(as_text=True)
    assert "Schule" in page_a and "Sportplatz" not in page_a and "Rathaus" not in page_a
    assert "Sportplatz" in page_b and "Schule" not in page_b and "Markt" not in page_b
    one = c.get("/api/public/vans/van-b").get_json()
    assert names(one["vans"][0]) == ["Rathaus", "Sportplatz", "Rathaus"]
    assert {s["name"] for s in one["stops"]} == {"Rathaus", "Sportplatz"}


def test_a_hub_never_shows_its_own_tour_for_another_van(tmp_path):
    st = Store(tmp_path / "hub.db")
    try:
        publish(st, "van-x", "Bus X")  # no plan stored yet
        app = create_app({"TESTING": True}, config=cfg_for("van-a"), store=st, mode="hub")
        app.extensions["vanbox_clock"] = Clock(MON_0900)
        data = app.test_client().get("/api/public/vans").get_json()
        assert data["vans"][0]["next"] == [] and data["stops"] == []
        publish(st, "van-a", "Bus A")  # the van this config describes: its TOML tour
        data = app.test_client().get("/api/public/vans/van-a").get_json()
        assert names(data["vans"][0]) == ["Markt", "Schule", "Markt"]
    finally:
        st.close()


def test_cancellation_and_delay_in_plain_words(hub):
    app, st = hub
    except_(st, "van-a", kind="cancel", date=MONDAY, stop_key="schule",
            reason="Krankheit im Team")  # fmt: skip
    except_(st, "van-b", kind="delay", date=MONDAY, stop_key="rathaus", delay_min=30,
            reason="Stau")  # fmt: skip
    c = app.test_client()
    by = {v["van"]: v for v in c.get("/api/public/vans").get_json()["vans"]}
    schule = by["van-a"]["next"][1]
    assert (schule["name"], schule["status"], schule["reason"]) == (
        "Schule", "cancelled", "Krankheit im Team")  # fmt: skip
    rathaus = by["van-b"]["next"][0]
    assert (rathaus["status"], rathaus["delay_min"], rathaus["start"][11:16]) == (
        "delayed", 30, "10:00")  # fmt: skip
    page = c.get("/").get_data(as_text=True)
    # The line says when and where; its note only what changed (said once, not twice).
    said = lines(page)
    assert ("heute, 14:30–18:00 Uhr Schule", "Fällt aus. Grund: Krankheit im Team") in said
    assert ("Nächster Halt heute, 10:00–12:00 Uhr Rathaus",
            "Verspätet um 30 Minuten (statt 09:30 Uhr). Grund: Stau") in said  # fmt: skip
    # Each van's page has its own notice only.
    page_b = c.get("/van/van-b").get_data(as_text=True)
    assert "Verspätet um" in page_b and "Fällt aus" not in page_b
    en = c.get("/van/van-a?lang=en").get_data(as_text=True)
    assert ("today, 14:30–18:00 Schule", "Cancelled. Reason: Krankheit im Team") in lines(en)
    # The page's script says the same on every poll (its texts come with the page).
    client = json.loads(page.split('id="public-config" type="application/json">')[1]
                        .split("</script>")[0])  # fmt: skip
    assert client["text"]["note_cancelled"] == "Fällt aus."
    assert client["data"]["vans"][0]["next"][1]["status"] == "cancelled"


def test_tomorrow_and_moved_in_plain_words(hub):
    app, st = hub
    app.extensions["vanbox_clock"] = Clock(MON_0900 - timedelta(days=1))  # Sunday
    except_(st, "van-a", kind="move", date=MONDAY, stop_key="markt",
            new_date=MONDAY + timedelta(days=1), start=time(11, 0), end=time(12, 0))  # fmt: skip
    page = app.test_client().get("/van/van-a").get_data(as_text=True)
    # The line shows the new day and time; the note the old ones.
    assert ("Di 24.11., 11:00–12:00 Uhr Markt", "Verlegt (statt morgen 10:00 Uhr).") in lines(page)


FESTPLATZ = PlanStop("festplatz", "Festplatz", "Ilsede", 52.26, 10.2, 150.0, (), time(16, 0),
                     time(18, 0))  # fmt: skip


def every_kind_of_change(st: Store) -> None:
    """Monday (today): van-a's Schule cancelled, van-b's Rathaus 30 minutes late and its
    Sportplatz (15:00) moved to Tuesday 11-12; Tuesday: van-a's extra visit at a festival."""
    except_(st, "van-a", kind="cancel", date=MONDAY, stop_key="schule", reason="Krankheit")
    except_(st, "van-b", kind="delay", date=MONDAY, stop_key="rathaus", delay_min=30,
            reason="Stau")  # fmt: skip
    except_(st, "van-b", kind="move", date=MONDAY, stop_key="sportplatz",
            new_date=MONDAY + timedelta(days=1), start=time(11, 0), end=time(12, 0))  # fmt: skip
    except_(st, "van-a", kind="extra", date=MONDAY + timedelta(days=1), stop=FESTPLATZ,
            start=time(16, 0), end=time(18, 0))  # fmt: skip


@pytest.mark.parametrize("lang", LANGS)
def test_each_change_is_said_once_in_every_language(hub, lang):
    """A changed visit's line shows its day, time and place once; its note says what
    changed and repeats none of them (the old full sentence "Heute 14:30 Schule fällt
    aus." after "heute, 14:30-18:00 Uhr Schule" said the cancellation twice)."""
    app, st = hub
    every_kind_of_change(st)
    t = TEXT[lang]
    words = Words(t, MONDAY.isoformat())
    # status: (place, shown day, shown start, the start it had)
    want = {
        "cancelled": ("Schule", "2026-11-23", "14:30", "14:30"),
        "delayed": ("Rathaus", "2026-11-23", "10:00", "09:30"),
        "moved": ("Sportplatz", "2026-11-24", "11:00", "15:00"),
        "extra": ("Festplatz", "2026-11-24", "16:00", "16:00"),
    }
    c = app.test_client()
    for path in (f"/?lang={lang}", f"/timetable?lang={lang}"):
        changed = {s: (h, n) for s, h, n in items(c.get(path).get_data(as_text=True))
                   if s != "planned"}  # fmt: skip
        assert set(changed) == set(want), path
        for status, (place, day, start, was) in want.items():
            head, note = changed[status]
            line = f"{head} {note}"
            assert line.count(place) == 1, (path, line)
            assert line.count(words.num(start)) == 1, (path, line)  # the time as it is now
            assert words.day(day) not in note, (path, note)
            assert note, (path, status)
            if was != start:  # the note says the time it had, which the line does not
                assert words.num(was) in note and words.num(was) not in head, (path, line)
        # The struck-through cancelled line says "cancelled" in words too (screen readers).
        assert t["note_cancelled"] in changed["cancelled"][1]
        assert words.fill(t["say_reason"], r="Krankheit") in changed["cancelled"][1]


def test_a_new_van_is_not_public_until_published(hub):
    app, st = hub
    registry.register(st, ["van-new"])
    set_stops(st, "van-new", SCHULE)
    c = app.test_client()
    for path in ("/", "/api/public/vans", "/timetable", "/calendar.ics"):
        body = c.get(path).get_data(as_text=True)
        assert "van-new" not in body, path
    for path in ("/van/van-new", "/api/public/vans/van-new", "/van/van-new/timetable",
                 "/van/van-new/calendar.ics"):  # fmt: skip
        assert c.get(path).status_code == 404, path
    registry.rename(st, "van-new", "Bus Neu")
    assert c.get("/van/van-new").status_code == 404  # named, but not published yet
    registry.publish(st, "van-new")
    assert "Bus Neu" in c.get("/van/van-new").get_data(as_text=True)
    assert "van-new" in {v["van"] for v in c.get("/api/public/vans").get_json()["vans"]}


def test_a_retired_van_disappears_from_public_pages(hub):
    app, st = hub
    c = app.test_client()
    assert "Bus Süd" in c.get("/").get_data(as_text=True)
    registry.retire(st, "van-b")
    for path in ("/", "/api/public/vans", "/timetable", "/calendar.ics"):
        body = c.get(path).get_data(as_text=True)
        assert "Bus Süd" not in body and "van-b" not in body, path
    for path in ("/van/van-b", "/api/public/vans/van-b", "/van/van-b/timetable",
                 "/van/van-b/calendar.ics"):  # fmt: skip
        assert c.get(path).status_code == 404, path


def test_weekly_timetable(hub):
    app, st = hub
    except_(st, "van-a", kind="cancel", date=MONDAY, stop_key="schule", reason="Fortbildung")
    c = app.test_client()
    page = c.get("/timetable").get_data(as_text=True)
    assert "Wochenplan der Busse" in page and "Woche vom 23.11. bis 29.11.2026" in page
    sections = re.findall(r'<section class="tt-van" data-van="([^"]+)"', page)
    assert sections == ["van-a", "van-b"]
    a = page.split('data-van="van-a"')[1].split('data-van="van-b"')[0]
    assert a.count('class="st-planned"') == 2  # Mon Markt, Wed Markt
    assert ("14:30–18:00 Uhr Schule (Edemissen)", "Fällt aus. Grund: Fortbildung") in lines(a)
    assert "Rathaus" not in a
    one = c.get("/van/van-b/timetable").get_data(as_text=True)
    assert "Wochenplan: Bus Süd" in one and "Schule" not in one
    assert one.count('class="st-planned"') == 3  # Mon Rathaus, Mon Sportplatz, Thu Rathaus
    assert "/van/van-b/calendar.ics" in one
    en = c.get("/timetable?lang=en").get_data(as_text=True)
    assert "Weekly timetable of the vans" in en
    assert ("14:30–18:00 Schule (Edemissen)", "Cancelled. Reason: Fortbildung") in lines(en)


@pytest.mark.parametrize(
    ("asked", "shown"),
    [
        ("-1", "23.11."),
        ("0", "23.11."),
        ("1", "30.11."),
        ("8", "18.1."),
        ("9", "18.1."),
        ("x", "23.11."),
    ],
)
def test_timetable_weeks_are_bounded(hub, asked, shown):
    app, _ = hub
    page = app.test_client().get(f"/timetable?week={asked}").get_data(as_text=True)
    assert f"Woche vom {shown} bis" in page
    assert ('rel="next"' in page) == (shown != "18.1.")
    assert ('rel="prev"' in page) == (shown != "23.11.")


def test_box_shows_its_own_van_its_own_plan(tmp_path):
    st = Store(tmp_path / "box.db", van="van-a")
    try:
        app = create_app({"TESTING": True}, config=cfg_for("van-a"), store=st, mode="box")
        app.extensions["vanbox_clock"] = Clock(MON_0900)
        c = app.test_client()
        page = c.get("/map/timetable").get_data(as_text=True)
        assert "Wochenplan: JUNGregio-Mobil" in page and "Schule" in page
        # A plan the box received (stored) wins over the TOML tour.
        except_(
            st,
            "van-a",
            cfg_for("van-a").tour,
            kind="cancel",
            date=MONDAY,
            stop_key="schule",
            reason="Regen",
        )
        page = c.get("/map").get_data(as_text=True)
        assert ("heute, 14:30–18:00 Uhr Schule", "Fällt aus. Grund: Regen") in lines(page)
        assert "Fällt aus." in c.get("/map/timetable").get_data(as_text=True)
        assert c.get("/timetable").status_code == 404  # the hub's routes are not on the box
        assert c.get("/staff/fleet/").status_code == 404  # nor the registry pages
    finally:
        st.close()


def test_names_and_reasons_are_text_not_markup(hub):
    app, st = hub
    registry.rename(st, "van-a", "<b>Bus</b> & Co")
    except_(st, "van-a", kind="cancel", date=MONDAY, stop_key="schule",
            reason="<script>alert(1)</script>")  # fmt: skip
    c = app.test_client()
    for path in ("/", "/van/van-a", "/timetable", "/van/van-a/timetable",
                 "/?lang=ar", "/van/van-a?lang=fa", "/timetable?lang=ar",
                 "/van/van-a/timetable?lang=fa"):  # fmt: skip  # <bdi> or isolates in ar, fa
        page = c.get(path).get_data(as_text=True)
        assert "<script>alert(1)" not in page and "<b>Bus</b>" not in page, path
        assert "&lt;b&gt;Bus&lt;/b&gt; &amp; Co" in page or "\\u003cb\\u003eBus" in page, path


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(van=hst.text(alphabet=hst.characters(blacklist_categories=("Cs",)), min_size=1, max_size=50))
def test_any_van_in_a_public_url_is_shown_or_a_404(hub, van):
    assume("/" not in van)  # a slash cannot be in a van id (an MQTT topic level)
    app, _ = hub
    c = app.test_client()
    quoted = urllib.parse.quote(van, safe="")
    for path in (f"/van/{quoted}", f"/van/{quoted}/timetable", f"/van/{quoted}/calendar.ics",
                 f"/api/public/vans/{quoted}"):  # fmt: skip
        code = c.get(path).status_code
        assert code == (200 if van in ("van-a", "van-b") else 404), (path, code)
