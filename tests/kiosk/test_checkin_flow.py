"""Issue 14 points 2 and 3 through Flask's test client: "back" on every step, the new
age groups (accepted by the hub's decoder), the step counter, locale digits, group size
(one check-in per person), the per-flow repeat guard, the privacy screen, and the
offline screen and service worker of point 1."""

from __future__ import annotations

import dataclasses
import json
import re
from functools import lru_cache
from html import unescape
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk import checkin, create_app
from telemetry import categories, topics
from telemetry.config import default_config
from telemetry.events import CheckIn
from telemetry.store import Store


@pytest.fixture
def db(tmp_path: Path):
    s = Store(tmp_path / "vanbox.db", van="testvan", tid="TV")
    yield s
    s.close()


@pytest.fixture
def client(db):
    return create_app(config=default_config(), store=db).test_client()


def rows(db: Store) -> list[dict]:
    return [dict(r) for r in db.reader().execute("SELECT * FROM checkins ORDER BY rowid")]


def hidden(html: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', html):
        out.setdefault(name, []).append(value)
    return out


def begin(client, lang: str = "de") -> dict:
    h = hidden(client.get(f"/{lang}/checkin").get_data(as_text=True))
    return {"csrf_token": h["csrf_token"][0], "flow": h["flow"][0]}


def post(client, lang: str = "de", **data) -> tuple[int, str]:
    r = client.post(f"/{lang}/checkin", data=data)
    return r.status_code, r.get_data(as_text=True)


def visible(html: str) -> str:
    """The text a visitor sees: no tags, scripts, attribute values or the QR code."""
    html = re.sub(r"<(script|style|svg|title)\b.*?</\1>", " ", html, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", " ", html))


def checked(html: str, name: str) -> set[str]:
    return set(re.findall(rf'name="{name}" value="([^"]+)"[^>]*\bchecked\b', html))


# --- back, and forward again ----------------------------------------------------------


def test_back_on_every_step_keeps_the_answers_and_the_stored_checkin_is_the_last_one(client, db):
    f = begin(client)
    code, html = post(client, **f, step="age", age="15-17")
    assert code == 200 and "Worum geht es dir heute?" in html and "Schritt 2 von 4" in html
    # back from the topics: the age screen again, same flow, the topics kept
    code, html = post(client, **f, step="topics", age="15-17", topic=["job", "money"],
                      group="3", back="1")  # fmt: skip
    assert code == 200 and "Wie alt bist du?" in html and "Schritt 1 von 4" in html
    h = hidden(html)
    assert h["flow"] == [f["flow"]] and h["topic"] == ["job", "money"] and h["group"] == ["3"]
    assert 'value="15-17" aria-current="true"' in html  # the answer given before shows
    # forward with another age: the topics come back checked, the group size too
    code, html = post(client, **f, step="age", age="21-24", topic=["job", "money"], group="3")
    assert checked(html, "topic") == {"job", "money"} and checked(html, "group") == {"3"}
    code, html = post(client, **f, step="topics", age="21-24", topic=["money"], group="3")
    assert "Bist du zum ersten Mal bei uns?" in html and "Schritt 3 von 4" in html
    code, html = post(client, **f, step="visit", age="21-24", topic=["money"], group="3",
                      back="1")  # fmt: skip
    assert checked(html, "topic") == {"money"} and "Schritt 2 von 4" in html
    code, html = post(client, **f, step="visit", age="21-24", topic=["money"], group="3",
                      first_visit="yes")  # fmt: skip
    assert "Wie hast du von uns erfahren?" in html and "Schritt 4 von 4" in html
    code, html = post(client, **f, step="heard", age="21-24", topic=["money"], group="3",
                      first_visit="yes", back="1")  # fmt: skip
    assert "Bist du zum ersten Mal bei uns?" in html
    assert rows(db) == []  # nothing is stored while going back and forth
    r = client.post("/de/checkin", data={**f, "step": "visit", "age": "21-24",
                    "topic": ["money"], "group": "3", "first_visit": "no"})  # fmt: skip
    assert r.status_code == 303
    got = rows(db)
    assert len(got) == 3  # "Wir sind zu 3": one check-in per person
    assert {(r["age_group"], r["topics"], r["first_visit"]) for r in got} == {
        ("21-24", '["money"]', 0)
    }
    assert len({r["id"] for r in got}) == 3 and db.count("outbox") == 3


def test_every_step_screen_has_back_and_the_counter_never_exceeds_its_total(client):
    f = begin(client)
    screens = [client.get("/de/checkin").get_data(as_text=True)]
    screens.append(post(client, **f, step="age", age="18-20")[1])
    screens.append(post(client, **f, step="topics", age="18-20")[1])
    screens.append(post(client, **f, step="visit", age="18-20", first_visit="yes")[1])
    for n, html in enumerate(screens, 1):
        assert ">Zurück</" in html.replace(
            '<span class="ico" aria-hidden="true">&#8592;</span> ', ">"
        )
        (counter,) = re.findall(r"Schritt (\d) von (\d)", html)
        assert counter == (str(n), str(checkin.STEP_TOTAL))
    assert "Schritt 3 von 3" not in "".join(screens)
    # the first step's "back" is a link to the start in the visitor's language
    assert 'class="btn btn-home btn-back" href="/en/"' in client.get("/en/checkin").get_data(
        as_text=True
    )


BAD_BACK = {
    "back on the first step": dict(step="age", age="18-20", back="1"),
    "back with another value": dict(step="topics", age="18-20", back="2"),
    "back twice": dict(step="topics", age="18-20", back=["1", "1"]),
    "back from heard without first_visit": dict(step="heard", age="18-20", back="1"),
    "back from topics without age": dict(step="topics", back="1"),
    "back from visit with its answer": dict(
        step="visit", age="18-20", first_visit="no", back="1"
    ),  # fmt: skip
}


@pytest.mark.parametrize("case", sorted(BAD_BACK))
def test_a_malformed_back_is_400_and_stores_nothing(client, db, case):
    f = begin(client)
    code, html = post(client, **f, **BAD_BACK[case])
    assert code == 400 and "Hoppla" in html
    assert rows(db) == []


# --- group size: one check-in per person --------------------------------------------


@pytest.mark.parametrize(
    "group, code, stored",
    [
        (None, 303, 1),
        ("1", 303, 1),
        ("2", 303, 2),
        (str(categories.GROUP_SIZE_MAX), 303, 6),
        (str(categories.GROUP_SIZE_MAX + 1), 400, 0),
        ("0", 400, 0),
        ("-1", 400, 0),
        ("02", 400, 0),
        ("2.0", 400, 0),
        (["2", "3"], 400, 0),
    ],  # fmt: skip
)
def test_group_size_bounds(client, db, group, code, stored):
    data = {**begin(client), "step": "visit", "age": "18-20", "first_visit": "no"}
    if group is not None:
        data["group"] = group
    assert client.post("/de/checkin", data=data).status_code == code
    assert len(rows(db)) == stored and db.count("outbox") == stored


def test_a_group_repeated_taps_still_counts_each_person_once(client, db):
    data = {**begin(client), "step": "visit", "age": "18-20", "first_visit": "no", "group": "4"}
    for _ in range(5):
        assert client.post("/de/checkin", data=data).status_code == 303
    assert len(rows(db)) == 4


def test_topics_screen_offers_group_sizes_in_locale_digits(client):
    f = begin(client, "fa")
    _code, html = post(client, "fa", **f, step="age", age="18-20")
    values = re.findall(r'name="group" value="(\d)"', html)
    assert values == [str(n) for n in range(1, categories.GROUP_SIZE_MAX + 1)]
    assert checked(html, "group") == {"1"}  # "just me" unless a visitor says otherwise
    labels = re.findall(r'<span aria-hidden="true">(.)</span></label>', html)
    assert labels == list("۱۲۳۴۵۶")


# --- age groups: the new codes, and the hub accepts them ----------------------------


def test_new_age_groups_are_offered_stored_and_accepted_by_the_hub(client, db):
    html = client.get("/de/checkin").get_data(as_text=True)
    assert ">unter 15</button>" in html and ">über 27</button>" in html
    old = ("15-17", "18-20", "21-24", "25-27", "unsaid")
    assert set(old) < set(categories.AGE_GROUPS)  # old boxes' codes stay valid
    for code in ("under-15", "over-27", *old):
        data = {**begin(client), "step": "visit", "age": code, "first_visit": "no"}
        assert client.post("/de/checkin", data=data).status_code == 303
    stored = [r["age_group"] for r in rows(db)]
    assert stored == ["under-15", "over-27", *old]
    for row in db.pending():
        msg = topics.decode(topics.topic("vanbox", "testvan", "checkin"), row.payload)
        assert msg.events[0].age_group in categories.AGE_GROUPS
    bad = json.loads(db.pending()[0].payload) | {"age_group": "under-14"}
    with pytest.raises(topics.PayloadError):
        topics.decode(topics.topic("vanbox", "testvan", "checkin"), json.dumps(bad))


# --- locale digits ------------------------------------------------------------------


def screens(client, lang: str) -> dict[str, str]:
    f = begin(client, lang)
    out = {"start": client.get(f"/{lang}/").get_data(as_text=True)}
    out["age"] = client.get(f"/{lang}/checkin").get_data(as_text=True)
    out["topics"] = post(client, lang, **f, step="age", age="15-17")[1]
    out["visit"] = post(client, lang, **f, step="topics", age="15-17")[1]
    out["heard"] = post(client, lang, **f, step="visit", age="15-17", first_visit="yes")[1]
    for page in ("privacy", "offline", "thanks"):
        out[page] = client.get(f"/{lang}/{page}").get_data(as_text=True)
    return out


def test_farsi_screens_use_persian_digits_only(client):
    for name, html in screens(client, "fa").items():
        text = visible(html)
        assert not re.search(r"[0-9]", text), (name, re.findall(r".{0,20}[0-9].{0,20}", text))
    fa = screens(client, "fa")
    assert "مرحلهٔ ۲ از ۴" in fa["topics"]
    assert "۴۰۰" in fa["privacy"]  # the retention period, through the same digits


def test_arabic_screens_use_one_kind_of_digits(client):
    # CLDR's default for "ar" is Latin digits: no Arabic-Indic digit beside them
    for name, html in screens(client, "ar").items():
        assert not re.search("[٠-٩۰-۹]", visible(html)), name


@lru_cache(maxsize=1)
def _hub_app():
    return create_app(config=default_config(), store=None, mode="hub")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=10**9))
def test_digits_are_a_pure_relabelling(n):
    from babel.core import Locale

    from kiosk import i18n

    app = _hub_app()
    for lang in i18n.LANGUAGES:
        with app.test_request_context(f"/{lang}/"):
            from flask_babel import force_locale

            with force_locale(lang):
                out = checkin.digits(n)
        system = Locale.parse(lang).default_numbering_system
        assert len(out) == len(str(n))
        if system == "latn":
            assert out == str(n)
        else:
            assert out.translate(
                {ord(d): str(i) for i, d in enumerate(checkin._DIGITS[system])}
            ) == str(n)


# --- "what happens with my answers?" --------------------------------------------------

# Each field of a stored check-in, and the words of the German privacy screen that name it.
SAID = {
    "age_group": "Deine Altersgruppe",
    "topics": "Deine Themen",
    "first_visit": "Zum ersten Mal oder nicht",
    "heard_from": "wie du von uns gehört hast",
    "language": "Deine Sprache",
    "time": "Tag und Stunde",
}


def test_privacy_screen_is_one_tap_from_the_start_and_names_every_stored_field(client):
    start = client.get("/").get_data(as_text=True)
    assert '<a class="btn btn-quiet btn-privacy" href="/de/privacy">' in start
    assert "Was passiert mit meinen Angaben?" in start
    html = visible(client.get("/de/privacy").get_data(as_text=True))
    # A field added to CheckIn fails here until this screen says what it is.
    assert {f.name for f in dataclasses.fields(CheckIn)} == set(SAID) | {"id", "van"}
    for field, words in SAID.items():
        assert words in html, field
    assert "Nach 400 Tagen" in html  # database.retention_days, from the config
    assert "Landkreis" in html and "Wofür?" in html


def test_privacy_screen_follows_the_configured_retention(db):
    client = create_app(
        config=default_config({"database": {"retention_days": 30}}), store=db
    ).test_client()
    assert "Nach 30 Tagen" in client.get("/de/privacy").get_data(as_text=True)


@pytest.mark.parametrize("lang", ["de", "en", "tr", "ar", "uk", "ru", "fa"])
def test_privacy_screen_in_every_language_links_the_others(client, lang):
    r = client.get(f"/{lang}/privacy")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and f'<html lang="{lang}"' in html
    assert r.headers["Cache-Control"] == "no-store"
    links = re.findall(r'href="/([a-z]{2})/privacy"', html)
    assert links == ["de", "en", "tr", "ar", "uk", "ru", "fa"]


def test_no_screen_promises_that_nothing_about_the_visitor_is_kept(client):
    for lang in ("de", "en"):
        for html in screens(client, lang).values():
            assert "keine Daten über dich" not in html and "no data about you" not in html
            assert "anything that could identify you" not in html
    thanks = client.get("/de/thanks").get_data(as_text=True)
    assert "Wir haben nur die Antworten gespeichert" in thanks


# --- the offline screen and the service worker ----------------------------------------


def test_service_worker_caches_the_offline_screen_in_every_language(client):
    r = client.get("/sw.js")
    assert r.status_code == 200 and r.mimetype == "text/javascript"
    assert r.headers["Cache-Control"] == "no-cache"  # a box update reaches the worker
    js = r.get_data(as_text=True)
    pages = json.loads(re.search(r"var PAGES = (\[.*?\]);", js).group(1))
    assets = json.loads(re.search(r"var ASSETS = (\[.*?\]);", js).group(1))
    assert pages == [f"/{c}/offline" for c in ("de", "en", "tr", "ar", "uk", "ru", "fa")]
    for url in pages + assets:
        assert client.get(url).status_code == 200, url
    assert 'mode === "navigate"' in js and "Response.error()" in js
    # every check-in screen registers it
    assert 'data-sw-url="/sw.js"' in client.get("/").get_data(as_text=True)


def test_offline_screen_polls_and_says_so_in_the_visitors_language(client):
    de = client.get("/de/offline").get_data(as_text=True)
    assert 'data-offline="1"' in de and "Einen Moment bitte" in de
    assert 'data-home-url="/"' in de  # back to the German start, like the idle reset
    ar = client.get("/ar/offline").get_data(as_text=True)
    assert 'dir="rtl"' in ar and "لحظة من فضلك" in ar
    assert 'data-offline="1"' not in client.get("/de/checkin").get_data(as_text=True)


def test_hub_has_no_kiosk_worker(tmp_path):
    hub = Store(tmp_path / "hub.db", van="")
    try:
        c = create_app(config=default_config(), store=hub, mode="hub").test_client()
        assert c.get("/sw.js").status_code == 404
        assert c.get("/de/offline").status_code == 404
    finally:
        hub.close()


# --- the repeat guard, per flow -----------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_guard_is_per_flow_and_keeps_a_burst_of_flows():
    clock = Clock()
    g = checkin.RepeatGuard(2.0, clock=clock, remember=3)
    done: list[str] = []
    for i in range(4):  # four visitors at once: four check-ins
        assert g.admit(f"flow{i}", lambda i=i: done.append(f"flow{i}"))
    assert done == ["flow0", "flow1", "flow2", "flow3"]
    assert not g.admit("flow0", lambda: done.append("again"))  # a repeat
    clock.t = 1.9  # just under the interval: the burst is kept beyond ``remember``
    assert g.admit("flow4", lambda: None)
    assert not g.admit("flow0", lambda: done.append("again"))
    clock.t = 2.1  # just over: old flows may be forgotten down to ``remember``
    assert g.admit("flow5", lambda: None)
    assert "flow0" not in g._flows and len(g._flows) == 3
    assert done.count("again") == 0
