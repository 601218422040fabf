"""The public map's words and service hours, on the server (no browser): seven languages
with the same keys, right to left for Arabic and Farsi, chosen by ``?lang=`` or the
browser; a parked van in the evening says so and reveals nothing else; the next stop
is marked; the page without JavaScript has a labelled outline map."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from datetime import time as dtime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st_

from kiosk import create_app
from kiosk.public_service import LEAD, service_view
from kiosk.public_text import LANGS, TEXT, form
from kiosk.timetable import Words
from telemetry import registry
from telemetry.config import default_config
from telemetry.events import Position
from telemetry.plan import Plan, PlanException, PlanStop, change_plan, new_id
from telemetry.store import Store

MARKT = PlanStop("markt", "Peine, Marktplatz", "Peine", 52.3215, 10.2335, 150.0, (0, 2),
                 dtime(10, 0), dtime(13, 0))  # fmt: skip
SCHULE = PlanStop("schule", "Edemissen, Schulzentrum", "Edemissen", 52.386, 10.261, 150.0,
                  (0, 3), dtime(14, 30), dtime(18, 0))  # fmt: skip
DEPOT = (52.3300, 10.2500)
MON = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday; Peine is UTC+1 in November


def local(h: int, m: int = 0) -> datetime:
    return MON + timedelta(hours=h - 1, minutes=m)


class Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def now(self) -> datetime:
        return self.t


def make_app(tmp_path, now: datetime, *, at=(MARKT.lat, MARKT.lon), status="online",
             cancel_schule=False):  # fmt: skip
    """The hub's app with one published van ("Bus Nord", plan: Markt Mon/Wed 10-13,
    Schule Mon/Thu 14:30-18), its last fix ``at`` one minute before ``now``."""
    st = Store(tmp_path / "hub.db")
    registry.register(st, ["van-a"])
    registry.rename(st, "van-a", "Bus Nord")
    registry.publish(st, "van-a")
    for s in (MARKT, SCHULE):
        change_plan(st, "van-a", lambda p, s=s: p.with_stop(s))
    if cancel_schule:
        ex = PlanException(id=new_id(), kind="cancel", date=MON.date(), stop_key="schule",
                           reason="Krankheit")  # fmt: skip
        change_plan(st, "van-a", lambda p: p.with_exception(ex))
    if at is not None:
        fix = now - timedelta(minutes=1)
        st.ingest_many([Position(time=fix, lat=at[0], lon=at[1], van="van-a")])
    with st.transaction() as conn:
        conn.execute(
            "INSERT INTO van_status (van, status, last_seen) VALUES (?, ?, ?)",
            ("van-a", status, (now - timedelta(minutes=1)).timestamp()),
        )
    cfg = default_config({"privacy": {"hidden_zones": [
        {"name": "Depot", "lat": DEPOT[0], "lon": DEPOT[1], "radius_m": 300}]}})  # fmt: skip
    app = create_app({"TESTING": True}, config=cfg, store=st, mode="hub")
    app.extensions["vanbox_clock"] = Clock(now)
    return app, st


@pytest.fixture
def app_at(tmp_path):
    made = []

    def make(now, **kw):
        app, st = make_app(tmp_path / str(len(made)), now, **kw)
        made.append(st)
        return app

    for i in range(8):
        (tmp_path / str(i)).mkdir()
    yield make
    for st in made:
        st.close()


# --- the words ---------------------------------------------------------------------------


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"{(\w+)}", text))


def test_seven_languages_with_the_same_keys_and_placeholders():
    """The same keys everywhere; a plain text has the same placeholders as the German
    one; a text with a count is a dict of forms (see test_public_plural.py) and no plain
    text takes a count."""
    assert LANGS == ("de", "en", "tr", "ar", "uk", "ru", "fa")
    keys = set(TEXT["de"])
    for lang in LANGS:
        assert set(TEXT[lang]) == keys, lang
        assert TEXT[lang]["lang"] == lang
        for k in keys:
            de, text = TEXT["de"][k], TEXT[lang][k]
            assert type(text) is type(de), (lang, k)
            if isinstance(de, dict):
                want = placeholders(de["other"])
                assert "n" in want, k
                for cat, f in text.items():
                    assert placeholders(f) - {"n"} == want - {"n"}, (lang, k, cat)
            else:
                assert placeholders(text) == placeholders(de), (lang, k)
                assert "n" not in placeholders(text), (lang, k)
        assert len(TEXT[lang]["weekdays"].split(",")) == 7
        assert len(TEXT[lang]["digits"]) == 10
    assert {lang for lang in LANGS if TEXT[lang]["dir"] == "rtl"} == {"ar", "fa"}


def test_turkish_never_suffixes_an_inserted_value():
    """A Turkish case suffix after a time ("14:30'dan", "15:00'ten") follows the vowel
    harmony of how the number is read, which a template cannot know: the texts put the
    value where it takes no suffix ("saat {t} itibarıyla")."""
    texts = []
    for v in TEXT["tr"].values():
        texts += list(v.values()) if isinstance(v, dict) else [v]
    assert texts and not [t for t in texts if re.search(r"\}'", t)]


def test_digits_and_dates_in_the_language():
    fa, ar, de = (Words(TEXT[x], "2026-11-23") for x in ("fa", "ar", "de"))
    assert fa.hm("2026-11-25T10:00+01:00") == "۱۰:۰۰"
    assert ar.hm("2026-11-25T10:00+01:00") == "١٠:٠٠"
    assert de.day("2026-11-25T10:00") == "Mi 25.11."
    assert fa.day("2026-11-25T10:00") == "چهارشنبه ۲۵/۱۱"
    assert de.day("2026-11-24T10:00") == "morgen"


@pytest.mark.parametrize("lang", LANGS)
def test_a_change_in_a_list_and_alone(lang):
    """In a list (the line shows day, time and place) a change says only what changed;
    alone (the calendar's words, the default) it is the whole sentence."""
    t = TEXT[lang]
    visit = {"name": "Edemissen, Schulzentrum", "start": "2026-11-24T11:00+01:00",
             "end": "2026-11-24T12:00+01:00", "planned_start": "2026-11-23T14:30+01:00",
             "delay_min": 0, "reason": "Regen"}  # fmt: skip
    listed, alone = Words(t, "2026-11-23", in_list=True), Words(t, "2026-11-23")
    for status in ("cancelled", "delayed", "moved", "extra"):
        n = {**visit, "status": status}
        if status == "delayed":
            n.update(start="2026-11-23T14:50+01:00", end="2026-11-23T18:00+01:00", delay_min=20)
        note, sentence = listed.note(n), alone.note(n)
        assert note == listed.change(n) and sentence == alone.sentence(n)
        assert note.endswith(listed.fill(t["say_reason"], r="Regen")), (status, note)
        assert visit["name"] not in note and listed.day(n["start"]) not in note, (status, note)
        if status != "extra":  # an extra visit is the same few words either way
            assert visit["name"] in sentence, (status, sentence)
    n = {**visit, "status": "delayed", "start": "2026-11-23T14:50+01:00", "delay_min": 20}
    delayed = form(t["note_delayed"], lang, 20)
    assert listed.note(n).startswith(listed.fill(delayed, n=listed.num(20),
                                                 t=listed.num("14:30")))  # fmt: skip
    moved = listed.note({**visit, "status": "moved"})
    assert moved.startswith(listed.fill(t["note_moved"], day=t["today"], t=listed.num("14:30")))
    assert listed.note({**visit, "status": "planned"}) == alone.note({**visit}) == ""


@pytest.mark.parametrize(
    ("header", "want"),
    [("ar,en;q=0.5", "ar"), ("fa-IR", "fa"), ("uk-UA,uk;q=0.9", "uk"), ("tr", "tr"),
     ("ru-RU", "ru"), ("en-GB", "en"), ("fr-FR", "de"), ("", "de")],
)  # fmt: skip
def test_language_from_the_browser(app_at, header, want):
    app = app_at(local(11))
    page = app.test_client().get("/", headers={"Accept-Language": header}).get_data(as_text=True)
    assert f'<html lang="{want}" dir="{TEXT[want]["dir"]}">' in page
    assert TEXT[want]["title"] in page


def test_switcher_links_every_language_and_wins_over_the_browser(app_at):
    c = app_at(local(11)).test_client()
    page = c.get("/?lang=fa", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert '<html lang="fa" dir="rtl">' in page
    for lang in LANGS:
        assert f'href="?lang={lang}" hreflang="{lang}"' in page
    assert re.search(r'hreflang="fa" lang="fa" aria-current="true"', page)
    tt = c.get("/timetable?lang=ar&week=1").get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in tt and TEXT["ar"]["tt_title"] in tt
    assert 'href="?lang=uk&week=1"' in tt.replace("&amp;", "&")


# --- service hours -----------------------------------------------------------------------


def test_the_evening_says_the_van_is_parked_and_nothing_else(app_at):
    # Monday 19:30: the van is switched on at the depot, online, a fix a minute old.
    app = app_at(local(19, 30), at=DEPOT)
    c = app.test_client()
    v = c.get("/api/public/vans").get_json()["vans"][0]
    assert (v["state"], v["closed"]) == ("closed", "closed")
    assert v["position"] is None and v["status"] is None and v["last_seen"] is None
    page = c.get("/").get_data(as_text=True)
    text = page.split('<section id="vans"', 1)[1].split("</section>", 1)[0]
    assert "Heute keine Sprechzeit mehr" in text
    assert "Nächster Halt: Mi 25.11. 10:00 Uhr, Peine, Marktplatz" in text
    for word in ("Offline", "Zuletzt", "Verbindung", "gerade eben", "vor 1 Minute", "online"):
        assert word not in text, word
    assert "van-mark" not in page and "<time" not in page
    en = c.get("/?lang=en").get_data(as_text=True)
    assert "No more opening hours today" in en and "Next stop: Wed 25/11 10:00" in en


def test_a_van_that_is_off_in_the_evening_looks_the_same(app_at):
    on = app_at(local(19, 30), at=DEPOT).test_client().get("/api/public/vans").get_json()
    off = app_at(local(19, 30), at=None, status="offline").test_client()
    off = off.get("/api/public/vans").get_json()
    assert on["vans"] == off["vans"]


@pytest.mark.parametrize(
    ("now", "state", "closed"),
    [
        (local(9, 29), "closed", "later"),  # 31 min before the first visit
        (local(9, 31), "away", None),  # 29 min before: driving to the first stop
        (local(12, 59), "open", None),
        (local(13, 1), "away", None),  # between two visits: in service
        (local(17, 59), "away", None),  # the last visit, not at its stop
        (local(18, 1), "closed", "closed"),
    ],
)
def test_service_hours_just_inside_and_outside(app_at, now, state, closed):
    app = app_at(now)  # the fix is at the Markt stop, a minute old
    v = app.test_client().get("/api/public/vans").get_json()["vans"][0]
    assert (v["state"], v["closed"]) == (state, closed)
    assert v["last_seen"] is None  # only an offline van in service hours has it
    if closed == "later":
        assert v["later_at"] == "2026-11-23T10:00+01:00"
        page = app.test_client().get("/").get_data(as_text=True)
        assert "Heute ab 10:00 Uhr geöffnet" in page


def test_offline_in_service_hours_says_so_gently(app_at):
    app = app_at(local(15), status="offline")
    c = app.test_client()
    v = c.get("/api/public/vans").get_json()["vans"][0]
    assert v["state"] == "offline" and v["last_seen"]
    page = c.get("/").get_data(as_text=True)
    assert "Gerade keine Verbindung" in page and "Zuletzt gemeldet" in page
    # Before the first visit has begun, a box that is not on yet is not "no connection".
    v = app_at(local(9, 45), status="offline").test_client().get("/api/public/vans").get_json()
    assert v["vans"][0]["state"] == "closed" and v["vans"][0]["closed"] == "later"


def test_no_visit_today(app_at):
    tue = local(11) + timedelta(days=1)
    v = app_at(tue).test_client().get("/api/public/vans").get_json()["vans"][0]
    assert (v["state"], v["closed"]) == ("closed", "none")


@settings(max_examples=300, deadline=None)
@given(minutes=st_.integers(0, 7 * 24 * 60), state=st_.sampled_from(["away", "driving", "offline"]))
def test_outside_service_nothing_is_revealed(minutes, state):
    """Whatever the box reports, outside [first visit - LEAD, last visit end] of the day
    the public view has no position, status or "last seen"."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Europe/Berlin")
    plan = Plan(van="van-a").with_stop(MARKT).with_stop(SCHULE)
    now = MON + timedelta(minutes=minutes)
    view = {"van": "van-a", "state": state, "status": "online", "last_seen": "x",
            "position": {"lat": 1, "lon": 2}, "stop": None, "open_since": None,
            "open_until": None, "next": []}  # fmt: skip
    out = service_view(view, plan, tz, now)
    today = [v for v in plan.visits_on(now.astimezone(tz).date(), tz) if not v.cancelled]
    inside = bool(today) and min(v.start for v in today) - LEAD <= now < max(v.end for v in today)
    if not inside:
        assert out["state"] == "closed"
        assert out["position"] is None and out["status"] is None and out["last_seen"] is None


# --- the next stop and the map without JavaScript ------------------------------------------


def test_next_stop_marked_in_list_and_on_the_map(app_at):
    c = app_at(local(11)).test_client()  # open at the Markt; next: Schule 14:30
    data = c.get("/api/public/vans").get_json()
    nxt = [n for n in data["vans"][0]["next"] if n["is_next"]]
    assert [n["name"] for n in nxt] == ["Edemissen, Schulzentrum"]
    assert {s["name"]: s["next"] for s in data["stops"]} == {
        "Peine, Marktplatz": False, "Edemissen, Schulzentrum": True}  # fmt: skip
    page = c.get("/").get_data(as_text=True)
    assert re.search(r'class="st-planned is-next"><span class="next-badge">Nächster Halt', page)
    assert '<g class="next">' in page and page.count('<g class="stop">') == 1


def test_a_cancelled_visit_is_not_the_next_stop(app_at):
    c = app_at(local(13, 30), cancel_schule=True).test_client()
    v = c.get("/api/public/vans").get_json()["vans"][0]
    assert v["next"][0]["status"] == "cancelled" and not v["next"][0]["is_next"]
    assert [n["name"] for n in v["next"] if n["is_next"]] == ["Peine, Marktplatz"]
    assert v["state"] == "closed"  # the cancelled visit was the day's last


def test_outline_map_without_javascript(app_at):
    page = app_at(local(11)).test_client().get("/?lang=ar").get_data(as_text=True)
    svg = page.split('<figure class="outline"', 1)[1].split("</figure>", 1)[0]
    assert '<path class="lk" d="M' in svg
    for muni in ("Peine", "Hohenhameln", "Ilsede", "Lengede", "Vechelde", "Wendeburg"):
        assert f">{muni}</text>" in svg
    assert ">Edemissen</text>" not in svg  # its next stop is named there instead
    assert ">Edemissen, Schulzentrum</text>" in svg
    assert TEXT["ar"]["outline_label"] in svg
    assert "van-open" in svg and ">Bus Nord</text>" in svg  # open: its public position
    closed = app_at(local(20)).test_client().get("/").get_data(as_text=True)
    assert "van-mark" not in closed.split('<figure class="outline"', 1)[1].split("</figure>")[0]
